"""``inspector run --recipe R.yaml SOURCE...``: inspect files and folders into the database."""

from __future__ import annotations

import argparse
import json
import sys
import threading

from inspector.cli.arguments import station_name
from inspector.cli.progress import Progress
from inspector.errors import InspectorError, StoreError
from inspector.recipe.io import load_recipe
from inspector.sources import CameraSource, FrameSource, SourceOptions, open_source


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="inspect images with a recipe and store the results",
        description="Inspect image files and folders with a recipe; every image gets one PASS, FAIL or ERROR row.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image files or folders")
    live = p.add_argument_group("live sources (instead of SOURCE)")
    live.add_argument("--watch", metavar="FOLDER", help="hot folder: inspect each image once it is completely written")
    live.add_argument("--camera", metavar="INDEX|URL", help="camera device index or RTSP / HTTP stream")
    live.add_argument("--video", metavar="FILE", help="video file, frame by frame")
    live.add_argument("--every", type=int, default=1, metavar="N", help="inspect every N-th frame (default 1)")
    live.add_argument("--width", type=int, help="camera: requested frame width")
    live.add_argument("--height", type=int, help="camera: requested frame height")
    live.add_argument("--fps", type=float, help="camera: requested frame rate")
    live.add_argument(
        "--trigger",
        choices=("every", "software"),
        default="every",
        help="software: inspect one frame each time Enter is pressed",
    )
    live.add_argument(
        "--save-frames",
        choices=("fail", "all", "none"),
        default="fail",
        help="camera / video frames to keep as images (default: those that FAIL)",
    )
    live.add_argument("--sort", action="store_true", help="hot folder: move inspected files into pass/ fail/ error/")
    live.add_argument("--settle", type=float, default=1.0, help="hot folder: seconds a file must stay unchanged")
    live.add_argument(
        "--idle-timeout", type=float, default=None, help="hot folder: stop after this many seconds without a new file"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--recipe", help="recipe YAML file")
    which.add_argument(
        "--product",
        help="the product's published recipe (`inspector recipe publish`), pulled from --central, else --db",
    )
    p.add_argument("--version", type=int, default=None, help="with --product: this published version (default: newest)")
    p.add_argument("--db", default=None, help="database URL or SQLite file (default: the data directory's)")
    p.add_argument("-r", "--recursive", action="store_true", help="look into sub-folders")
    p.add_argument("--force", action="store_true", help="inspect images again even if already inspected")
    p.add_argument("--fail-on-defect", action="store_true", help="exit with status 1 if any image FAILs")
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay pictures of FAIL images")
    p.add_argument(
        "--station", type=station_name, default=None, help="station name stored with the run (default: host name)"
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="segmenter engine: auto uses the `inspector export` ONNX file on the CPU when there is one",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="files and folders: inspect N images at once, each on a network of its own "
        "(default: 2 where the network runs on a CPU with two cores, half the CPU cores up to 8 on a "
        "CUDA GPU, otherwise 1)",
    )
    p.add_argument(
        "--central",
        metavar="URL",
        default=None,
        help="also send every result to this central database (e.g. postgresql+psycopg://station@host/inspector); "
        "while it cannot be reached, results are kept in --db and sent when it is back",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per image, then a summary line")
    p.set_defaults(run=run)


def _source(args: argparse.Namespace) -> FrameSource:
    chosen = [name for name in ("watch", "camera", "video") if getattr(args, name)] + (
        ["files"] if args.sources else []
    )
    if len(chosen) != 1:
        raise InspectorError("give exactly one source: image files / folders, --watch, --camera or --video")
    spec = args.sources
    if args.watch:
        spec = f"watch:{args.watch}"
    elif args.camera:
        spec = f"camera:{args.camera}"
    elif args.video:
        spec = f"video:{args.video}"
    options = SourceOptions(
        recursive=args.recursive,
        every=args.every,
        trigger=args.trigger,
        width=args.width,
        height=args.height,
        fps=args.fps,
        settle=args.settle,
        idle_timeout=args.idle_timeout,
        sort=args.sort,
        on_status=lambda status: print(f"{args.camera or args.video}: {status}", file=sys.stderr),
    )
    return open_source(spec, options)


def _listen_for_enter(source: CameraSource) -> None:
    """Software trigger from the terminal: each Enter inspects the next frame."""

    def listen() -> None:
        for _ in sys.stdin:
            source.fire()

    print("software trigger: press Enter to inspect a part, Ctrl+C to stop", file=sys.stderr)
    threading.Thread(target=listen, name="inspector-trigger", daemon=True).start()


def _forward(store, central: str):
    """Start sending results to the central database; returns what stops it (see
    services/forwarding.py). The station's own database must not be a server: it is where
    results wait while the central one cannot be reached."""
    from inspector.services.forwarding import Forwarder

    if store.sqlite_path is None:
        raise InspectorError("--central: --db must be this station's own SQLite file (where results wait)")

    def tell(state) -> None:
        print(f"inspector run: {state.describe()}", file=sys.stderr)

    return Forwarder(store, central, on_state=tell).start()


def _recipe(args: argparse.Namespace):
    """The recipe to run and its published version (None for a recipe file)."""
    if args.recipe:
        if args.version is not None:
            raise InspectorError("--version goes with --product (a published recipe)")
        return load_recipe(args.recipe), None
    from inspector import settings
    from inspector.services.publishing import pull, pulled_before
    from inspector.store.database import open_store

    folder = settings.data_dir() / "published"
    try:
        source = open_store(args.central or args.db, create=False)
        try:
            recipe, version = pull(source, args.product, folder, version=args.version)
        finally:
            source.close()
    except StoreError as exc:  # a station restarting while the central database is away
        earlier = pulled_before(folder, args.product, args.version)
        if earlier is None:
            raise
        recipe, version = earlier
        print(f"{args.product}: {exc}; running version {version} as pulled before", file=sys.stderr)
        return recipe, version
    print(f"{args.product}: published version {version} ({recipe.source.parent})", file=sys.stderr)
    return recipe, version


def run(args: argparse.Namespace) -> int:
    from inspector.engine.pipeline import open_pipeline
    from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
    from inspector.store.database import open_store

    # Recipe and database problems stop the run before anything is written.
    source = _source(args)
    if args.workers is not None and args.workers < 1:
        raise InspectorError(f"--workers: at least 1, got {args.workers}")
    recipe, version = _recipe(args)
    # The model, the reference and any CLIP classes load now: a problem with them stops
    # the run here instead of turning every image into an ERROR row.
    pipeline = open_pipeline(recipe, device=args.device, backend=args.backend)
    store = open_store(args.db)
    finish_forwarding = _forward(store, args.central) if args.central else None
    if isinstance(source, CameraSource) and args.trigger == "software":
        _listen_for_enter(source)
    progress = Progress(enabled=not args.json)

    def on_result(frame, result, image) -> None:
        if args.json:
            sys.stdout.write(json.dumps({"image": frame.name, "sha256": frame.sha256, **result.to_dict()}) + "\n")
            sys.stdout.flush()
        else:
            progress.step(f"{result.verdict:<5} {frame.name}" + (f"  ({result.error})" if result.error else ""))

    def on_skip(frame) -> None:
        progress.step(f"skip  {frame.name} (the same picture was already inspected, under this name or another)")

    settings = RunSettings(
        station=args.station,
        force=args.force,
        save_overlays=not args.no_overlays,
        save_frames=args.save_frames,
        workers=args.workers,
        recipe_version=version,
    )
    forwarded = None
    try:
        summary = run_inspection(pipeline, store, source, settings, RunEvents(result=on_result, skipped=on_skip))
    finally:
        progress.done()
        if finish_forwarding is not None:
            forwarded = finish_forwarding()  # a last attempt: what waits is sent on the next run
        store.close()
    report = {
        **summary.to_dict(),
        "database": store.url,
        **({"central": forwarded.describe(), "waiting": forwarded.waiting} if forwarded else {}),
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
            + (f"; {summary.pictures_lost} stored without their pictures" if summary.pictures_lost else "")
            + f"; {summary.elapsed_s:.1f} s"
        )
        print(f"results in {store.url}")
        if forwarded is not None:
            print(forwarded.describe())
        if summary.status == "finished" and not summary.inspected and not summary.skipped:
            print("inspector run: the source held no image files", file=sys.stderr)
    return 1 if args.fail_on_defect and summary.counts["FAIL"] else 0
