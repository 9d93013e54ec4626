"""``inspector evaluate --recipe R.yaml FOLDER``: measure a recipe on labelled images."""

from __future__ import annotations

import argparse
import json

from inspector.cli.progress import Progress


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure a recipe on a labelled folder (MVTec AD layout)",
        description=(
            "Inspect every image of FOLDER/test/good and FOLDER/test/<defect kind> (nothing is stored) and "
            "measure the recipe against the labels and FOLDER/ground_truth/<defect kind>/<image>_mask.png: "
            "image AUROC, recall and false-reject rate at the recipe's threshold, pixel AUROC, per-region "
            "overlap, time per image."
        ),
    )
    p.add_argument("folder", metavar="FOLDER", help="labelled folder (test/good, test/<kind>, ground_truth/<kind>)")
    p.add_argument("--recipe", required=True, help="recipe YAML file")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="the figures and every image's result as JSON")
    p.set_defaults(run=run)


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from inspector.engine.pipeline import open_pipeline
    from inspector.recipe.io import load_recipe
    from inspector.services.evaluation import evaluate, labelled_images

    images = labelled_images(args.folder)  # a folder not laid out so is said before the model loads
    pipeline = open_pipeline(load_recipe(args.recipe), device=args.device)
    progress = Progress(enabled=not args.json, total=len(images))
    try:
        evaluation = evaluate(
            pipeline,
            args.folder,
            images=images,
            on_image=lambda i: progress.step(f"{i.verdict:<5} {i.kind}/{i.name}  score {i.score:.3g}"),
        )
    finally:
        progress.done()
    figures = evaluation.to_dict()
    if args.json:
        print(json.dumps(figures))
        return 0
    rows = [
        ("images", f"{figures['images']} ({figures['good']} good, {figures['defective']} defective)"),
        ("image AUROC", _figure(figures["image_auroc"])),
        ("threshold", "n/a (segments)" if figures["threshold"] is None else f"{figures['threshold']:.4g}"),
        ("recall (defective parts rejected)", _percent(figures["recall"])),
        ("false rejects (good parts rejected)", _percent(figures["false_reject_rate"])),
        ("pixel AUROC", _figure(figures["pixel_auroc"])),
        ("defect regions found", _percent(figures["regions_found"]) + f" of {figures['defect_regions']}"),
        ("mean region overlap", _percent(figures["region_overlap"])),
        ("time per image (median)", f"{figures['ms_per_image']} ms"),
        ("errors", str(figures["errors"])),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{args.recipe} on {args.folder}:")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if figures["misses"]:
        print("  missed: " + ", ".join(figures["misses"]))
    if figures["false_rejects"]:
        print("  falsely rejected: " + ", ".join(figures["false_rejects"]))
    return 0
