"""``inspector recipe new`` and ``inspector recipe validate``."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from inspector.engine.image import read_image
from inspector.engine.preflight import validate_recipe
from inspector.errors import InspectorError, RecipeError
from inspector.recipe.io import load_recipe, save_recipe
from inspector.recipe.model import Recipe


def add_parser(sub) -> None:
    p = sub.add_parser("recipe", help="create or validate recipes", description="Create or validate recipes.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    new = actions.add_parser(
        "new",
        help="write a starting recipe for a reference image",
        description="Write a starting recipe (whole image as the part) for a reference image.",
    )
    new.add_argument("--reference", required=True, help="reference image of a good part")
    new.add_argument("--name", required=True, help="product name")
    new.add_argument("--out", type=Path, default=None, help="recipe file (default: recipes/NAME.yaml)")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(run=run_new)

    validate = actions.add_parser(
        "validate",
        help="check recipe files",
        description="Check recipe files as `inspector run` does before inspecting: fields, reference image, "
        "prompts, model weights, CLIP classes, a taught recipe's normal model, and that the part prompts "
        "select the part on the reference.",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(run=run_validate)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "recipe"


def run_new(args: argparse.Namespace) -> int:
    reference = Path(args.reference)
    read_image(reference)  # refuse a recipe around an unreadable image
    out = args.out or Path("recipes") / f"{_slug(args.name)}.yaml"
    if out.exists() and not args.force:
        raise RecipeError(f"{out}: already exists (use --force to overwrite)")
    relative = os.path.relpath(reference.resolve(), out.resolve().parent)
    recipe = save_recipe(Recipe(name=args.name, reference_image=relative), out)
    print(f"wrote {out} (product {recipe.name!r}, reference {relative}); add part prompts and thresholds next")
    return 0


def _check(path: Path) -> None:
    """What ``inspector run`` checks before it inspects anything, and the same way."""
    from inspector.engine.pipeline import open_pipeline

    recipe = load_recipe(path)
    validate_recipe(recipe, load_clip=True)  # every problem of the recipe and its files, named at once
    open_pipeline(recipe)  # then as run: the model loaded, the part found on the reference


def run_validate(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.files:
        try:
            _check(path)
        except InspectorError as exc:
            failures += 1
            print(str(exc))
        else:
            print(f"{path}: ok")
    if failures:
        raise RecipeError(f"{failures} of {len(args.files)} recipe(s) have problems")
    return 0
