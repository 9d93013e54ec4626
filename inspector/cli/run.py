"""``inspector run --recipe R.yaml SOURCE...``: inspect files and folders into the database."""

from __future__ import annotations

import argparse
import json
import sys

from inspector.cli.progress import Progress
from inspector.recipe.io import load_recipe
from inspector.recipe.validate import validate_recipe
from inspector.sources.files import FileSource


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="inspect images with a recipe and store the results",
        description="Inspect image files and folders with a recipe; every image gets one PASS, FAIL or ERROR row.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="image files or folders")
    p.add_argument("--recipe", required=True, help="recipe YAML file")
    p.add_argument("--db", default=None, help="database URL or SQLite file (default: the data directory's)")
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    p.add_argument("--force", action="store_true", help="inspect images again even if already inspected")
    p.add_argument("--fail-on-defect", action="store_true", help="exit with status 1 if any image FAILs")
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay pictures of FAIL images")
    p.add_argument("--station", default=None, help="station name stored with the run (default: host name)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="one JSON line per image, then a summary line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from inspector.engine.pipeline import InspectionPipeline
    from inspector.services.inspection_loop import run_inspection
    from inspector.store.database import open_store

    # Recipe and database problems stop the run before anything is written.
    recipe = load_recipe(args.recipe)
    validate_recipe(recipe)
    pipeline = InspectionPipeline(recipe, device=args.device)
    store = open_store(args.db)
    source = FileSource(args.sources, recursive=args.recursive)
    progress = Progress(enabled=not args.json)

    def on_result(frame, result, image) -> None:
        if args.json:
            sys.stdout.write(json.dumps({"image": frame.name, "sha256": frame.sha256, **result.to_dict()}) + "\n")
            sys.stdout.flush()
        else:
            progress.step(f"{result.verdict:<5} {frame.name}" + (f"  ({result.error})" if result.error else ""))

    def on_skip(frame) -> None:
        progress.step(f"skip  {frame.name} (already inspected)")

    try:
        summary = run_inspection(
            pipeline,
            store,
            source.frames(),
            source=source.describe(),
            station=args.station,
            force=args.force,
            save_overlays=not args.no_overlays,
            on_result=on_result,
            on_skip=on_skip,
        )
    finally:
        progress.done()
        store.close()
    report = {
        **summary.to_dict(),
        "database": store.url,
        "recipe": str(recipe.source),
        "recipe_sha256": pipeline.recipe_hash,
        "model": pipeline.model.to_dict(),
    }
    if args.json:
        print(json.dumps({"summary": report}))
    else:
        y = summary.yield_percent
        print(
            f"run {summary.run_id}: {summary.inspected} inspected - {summary.counts['PASS']} PASS, "
            f"{summary.counts['FAIL']} FAIL, {summary.counts['ERROR']} ERROR"
            + (f", yield {y:.1f} %" if y is not None else "")
            + (f"; {summary.skipped} skipped (already inspected, --force to redo)" if summary.skipped else "")
            + f"; {summary.elapsed_s:.1f} s"
        )
        print(f"results in {store.url}")
    return 1 if args.fail_on_defect and summary.counts["FAIL"] else 0
