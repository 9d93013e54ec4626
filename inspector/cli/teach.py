"""``inspector teach --recipe R.yaml GOOD...``: learn what good parts look like."""

from __future__ import annotations

import argparse
import json

from inspector.cli.progress import Progress
from inspector.errors import InspectorError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "teach",
        help="learn what good parts look like from good images",
        description=(
            "Teach a recipe from 1 to 500 images of good parts (files and folders): each is registered "
            "as the recipe registers images, its part found by the recipe's prompts, and what the part "
            "looks like is learnt. The normal model is written beside the recipe and the recipe saved "
            "pointing to it; the threshold is calibrated from the good images alone."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="GOOD", help="images of good parts, or folders of them")
    p.add_argument("--recipe", required=True, help="recipe YAML file (saved taught)")
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    p.add_argument(
        "--resolution",
        type=int,
        default=None,
        metavar="PIXELS",
        help="shorter side of the view the feature network sees (default: the recipe's, 192)",
    )
    p.add_argument(
        "--false-rejects",
        type=float,
        default=None,
        metavar="RATE",
        help="expected share of good parts over the threshold (default: the recipe's, 0.01)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="a JSON summary instead of text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from inspector.services.teaching import teach_recipe

    if args.resolution is not None and not 64 <= args.resolution <= 4096:
        raise InspectorError(f"--resolution: 64 to 4096 pixels, got {args.resolution}")
    if args.false_rejects is not None and not 0 < args.false_rejects <= 0.5:
        raise InspectorError(f"--false-rejects: a rate above 0 and at most 0.5, got {args.false_rejects}")
    progress = Progress(enabled=not args.json)

    def on_image(name: str, problem: str | None) -> None:
        progress.step(
            f"{'taught' if problem is None else 'left out':<8} {name}" + (f"  ({problem})" if problem else "")
        )

    try:
        taught = teach_recipe(
            args.recipe,
            args.sources,
            recursive=args.recursive,
            resolution=args.resolution,
            false_rejects=args.false_rejects,
            device=args.device,
            on_image=on_image,
        )
    finally:
        progress.done()
    summary = taught.to_dict()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"taught {summary['taught']} good image(s) in {summary['seconds']:.1f} s"
        + (f"; {len(summary['left_out'])} left out" if summary["left_out"] else "")
    )
    print(f"normal model: {taught.model_file} ({summary['bank_patches']} patches)")
    print(f"threshold {summary['threshold']:.4g}: {summary['rule']}")
    print(f"recipe saved: {taught.recipe.source}")
    return 0
