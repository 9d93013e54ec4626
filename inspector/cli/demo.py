"""``inspector demo``: the whole product on a fresh set of demo parts.

Each run draws new photographs of the demo product (good and defective parts, ground
truth kept beside them), inspects them with the demo recipe on the embedded model into
a database, and scores the verdicts and defect outlines against the ground truth.
Nothing is precomputed: the numbers are this run's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from inspector.cli.progress import Progress
from inspector.engine.image import read_image, write_image
from inspector.errors import InspectorError
from inspector.recipe.io import load_recipe
from inspector.sources.files import FileSource
from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="inspect a fresh set of demo parts and score the results",
        description="Generate good and defective demo parts, inspect them with the demo recipe on the embedded "
        "model, store the results and compare them with the ground truth.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: ./demo-output)")
    p.add_argument("--count", type=int, default=100, help="number of parts (default: 100, half defective)")
    p.add_argument("--seed", type=int, default=None, help="seed of the part set (default: a new one each run)")
    p.add_argument(
        "--teach",
        type=int,
        default=20,
        metavar="N",
        help="teach the recipe from N fresh good parts first (default 20; 0: the recipe untaught)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


# Written into every demo folder: only a folder holding it is emptied for a new demo.
_MARKER = ".inspector-demo"


def _fresh_folder(out: Path) -> None:
    """Empty ``out`` of a previous demo (a folder holding the demo's marker file), so that
    its images, results and database are not mixed with this one's. Any other folder
    that is not empty is refused, not touched: names such as images/ are common."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InspectorError(f"--out {out}: is a file, not a folder")
    entries = sorted(out.iterdir())
    if entries and not (out / _MARKER).is_file():
        raise InspectorError(f"--out {out}: is not empty and was not made by the demo; give a new or empty folder")
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            raise InspectorError(
                f"--out {out}: cannot clear the previous demo's {entry.name} ({exc.strerror})"
            ) from None


def _generate(out: Path, count: int, seed: int) -> dict[str, list[str]]:
    """Write the parts and a truth mask per defective part; returns defect kinds per image."""
    rng = np.random.default_rng(seed)
    background = demo_background()
    kinds = {}
    for k in range(count):
        scene = demo_scene(rng, defective=k % 2 == 1, background=background)
        name = f"part_{k:04d}.png"
        write_image(out / "images" / name, scene.image)
        truth = np.zeros(scene.image.shape[:2], np.uint8)
        for j, defect in enumerate(scene.defects, start=1):
            truth[defect.mask] = j
        write_image(out / "truth" / name, truth)
        kinds[name] = [d.label for d in scene.defects]
    return kinds


def _good_parts(folder: Path, count: int, seed: int) -> None:
    """``count`` good parts of the demo product, drawn apart from the inspected ones."""
    rng = np.random.default_rng([seed, 1])
    background = demo_background()
    for k in range(count):
        write_image(folder / f"good_{k:04d}.png", demo_scene(rng, defective=False, background=background).image)


def _demo_recipe(out: Path, args: argparse.Namespace, seed: int) -> Path:
    """The demo recipe, written into ``out`` and taught from ``--teach`` fresh good parts."""
    recipe_file = write_demo_recipe(out / "recipe")
    if args.teach:
        from inspector.services.teaching import teach_recipe

        _good_parts(out / "good", args.teach, seed)
        taught = teach_recipe(recipe_file, [out / "good"], device=args.device)
        if not args.json:
            print(f"taught from {len(taught.outcome.taught)} good parts in {taught.outcome.seconds:.1f} s")
    return recipe_file


def _score(out: Path, kinds: dict[str, list[str]], results: dict[str, dict]) -> dict:
    defective = [n for n, k in kinds.items() if k]
    good = [n for n, k in kinds.items() if not k]
    caught = sum(results[n]["verdict"] == "FAIL" for n in defective)
    false_rejects = sum(results[n]["verdict"] == "FAIL" for n in good)
    errors = sum(r["verdict"] == "ERROR" for r in results.values())
    found, total = 0, 0
    for name in defective:
        truth = read_image(out / "truth" / name)[..., 0]
        reported = np.zeros(truth.shape, np.uint8)
        for defect in results[name]["defects"]:
            outline = np.round(np.array(defect["outline"])).astype(np.int32)
            if len(outline) >= 3:
                cv2.fillPoly(reported, [outline], 1)
            else:  # a defect too small to outline still counts by its box
                x1, y1, x2, y2 = (round(v) for v in defect["box"])
                reported[y1 : y2 + 1, x1 : x2 + 1] = 1
        for j in range(1, int(truth.max()) + 1):
            total += 1
            found += bool((reported[truth == j]).any())
    from inspector.services.evaluation import auroc

    scored = [
        (results[n]["anomaly_score"], bool(kinds[n])) for n in kinds if results[n].get("anomaly_score") is not None
    ]
    return {
        "parts": len(kinds),
        "anomaly_auroc": auroc([s for s, _ in scored], [d for _, d in scored]) if scored else None,
        "defective_parts": len(defective),
        "recall_defective_parts": caught / max(len(defective), 1),
        "false_reject_rate": false_rejects / max(len(good), 1),
        "errors": errors,
        "true_defects": total,
        "defects_localised": found / max(total, 1),
    }


def run(args: argparse.Namespace) -> int:
    from inspector.engine.pipeline import open_pipeline
    from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
    from inspector.store.database import open_store

    if args.count < 2:
        raise SystemExit("inspector demo: --count must be at least 2")
    if not 0 <= args.teach <= 500:
        raise SystemExit("inspector demo: --teach must be 0 to 500")
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 2**31
    out = args.out
    started = time.perf_counter()
    _fresh_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("made by inspector demo; a new demo into this folder replaces it\n")
    print(
        f"demo: {args.count} parts of the demo product (seed {seed}) -> {out}", file=sys.stderr if args.json else None
    )
    kinds = _generate(out, args.count, seed)
    recipe = load_recipe(_demo_recipe(out, args, seed))
    pipeline = open_pipeline(recipe, device=args.device)
    store = open_store(str(out / "inspector.db"), images_dir=out / "results")
    results: dict[str, dict] = {}
    progress = Progress(enabled=not args.json, total=args.count)

    def on_result(frame, result, image) -> None:
        results[Path(frame.name).name] = result.to_dict()
        progress.step(f"{result.verdict:<5} {Path(frame.name).name}")

    source = FileSource([out / "images"])
    try:
        summary = run_inspection(pipeline, store, source, RunSettings(force=True), RunEvents(result=on_result))
    finally:
        progress.done()
        store.close()
    from inspector.report import ReportFilter, export_report

    store = open_store(str(out / "inspector.db"), images_dir=out / "results")
    try:
        (report_path,) = export_report(store, ReportFilter(run_id=summary.run_id), "html", out / "report.html")
    finally:
        store.close()
    scores = _score(out, kinds, results)
    report = {
        "seed": seed,
        **summary.to_dict(),
        **scores,
        "database": store.url,
        "recipe": str(recipe.source),
        "model": pipeline.model.to_dict(),
        "total_s": round(time.perf_counter() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report))
    else:
        _print_summary(report, store.images_dir, report_path)
    return 0


def _print_summary(report: dict, images_dir: Path, report_path: Path) -> None:
    judged = report["parts"] - report["defective_parts"]
    print(
        f"inspected {report['inspected']}: {report['pass']} PASS, {report['fail']} FAIL, "
        f"{report['error']} ERROR in {report['total_s']:.0f} s"
    )
    print(
        f"  defective parts caught (recall): {report['recall_defective_parts']:6.1%}   of {report['defective_parts']}"
    )
    print(f"  good parts rejected:             {report['false_reject_rate']:6.1%}   of {judged}")
    print(f"  true defects localised:          {report['defects_localised']:6.1%}   of {report['true_defects']}")
    if report["anomaly_auroc"] is not None:
        print(f"  anomaly score's image AUROC:     {report['anomaly_auroc']:6.3f}  (taught from good parts)")
    print(f"database {report['database']}; overlays of rejects in {images_dir}")
    print(f"report {report_path}")
