"""``inspector recipe``: new, validate, and publish / list / pull to and from a database."""

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

    publish = actions.add_parser(
        "publish",
        help="publish a recipe to a database for stations to pull",
        description="Publish a recipe (its YAML, reference image, taught normal model and exemplar images) as "
        "the next version of its product in a database, usually the central one. The same recipe and files "
        "as the newest version are that version again.",
    )
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--db", required=True, help="database URL (the central database) or SQLite file")
    publish.add_argument("--by", default="", help="who publishes it (stored with the version)")
    publish.add_argument("--note", default="", help="what changed (stored with the version)")
    publish.set_defaults(run=run_publish)

    listing = actions.add_parser("list", help="list published recipes", description="List published recipes.")
    listing.add_argument("--db", required=True, help="database URL or SQLite file")
    listing.add_argument("--product", default=None, help="only this product's versions")
    listing.set_defaults(run=run_list)

    pulling = actions.add_parser(
        "pull",
        help="write a published recipe into a folder",
        description="Write a published recipe version and its files into FOLDER/<product>-v<N>/, checked "
        "against their hashes.",
    )
    pulling.add_argument("product")
    pulling.add_argument("--db", required=True, help="database URL or SQLite file")
    pulling.add_argument("--version", type=int, default=None, help="default: the newest")
    pulling.add_argument("--to", type=Path, default=Path("recipes"), help="folder (default: recipes/)")
    pulling.set_defaults(run=run_pull)


def run_publish(args: argparse.Namespace) -> int:
    from inspector.services.publishing import publish
    from inspector.store.database import open_store

    store = open_store(args.db)
    try:
        version, new = publish(store, args.file, by=args.by, note=args.note)
    finally:
        store.close()
    print(f"{args.file}: {'published as' if new else 'already published as'} version {version} in {store.url}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from inspector.services.publishing import published
    from inspector.store.database import open_store

    store = open_store(args.db, create=False)
    try:
        versions = published(store, args.product)
    finally:
        store.close()
    if not versions:
        print(f"no published recipes in {store.url}")
    for p in versions:
        when = p.published_at.strftime("%Y-%m-%d %H:%M") if p.published_at else ""
        by = f" by {p.published_by}" if p.published_by else ""
        print(f"{p.product}  v{p.version}  {when}{by}  {p.recipe_sha256[:12]}  {p.note}".rstrip())
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from inspector.services.publishing import pull
    from inspector.store.database import open_store

    store = open_store(args.db, create=False)
    try:
        recipe, version = pull(store, args.product, args.to, version=args.version)
    finally:
        store.close()
    print(f"{args.product} version {version}: {recipe.source}")
    return 0


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
