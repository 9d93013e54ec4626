"""One benchmark measurement in its own process; prints one JSON line.

    python -m inspector.bench.child pipeline|network|baseline|agreement --recipe R --images DIR ...

Running each measurement in a fresh process makes its peak memory its own and lets the
pipeline measurement time a cold start (process start to first stored result).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["YOLO_AUTOINSTALL"] = "0"


def rss_mb() -> float:
    """Resident memory now (Linux /proc; peak memory where it is unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started.

    Linux: VmHWM, which starts afresh at exec (ru_maxrss would carry the parent's peak
    over into a child process).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _images(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.jpg"))


def steady_rate(arrivals: list[float], workers: int) -> float | None:
    """Results per second after each worker's first image, from when each result came.

    The first images pay for loading the model and segmenting the reference (the cold
    start reports that). With w workers the first w results come about together:
    counting from the first of them would count w - 1 images in no time.
    """
    n = len(arrivals)
    w = min(max(1, workers), n - 1)
    if w < 1:
        return None
    span = arrivals[-1] - arrivals[w - 1]
    return (n - w) / span if span > 0 else None


def cold_start_phases(spawned_at: float | None, marks: dict[str, float], first_result: float) -> dict | None:
    """How long each step of the start took, from the process's start to the first stored
    result; the steps are named by what ends them (``marks``, in order)."""
    if not spawned_at:
        return None
    ends = {**marks, "first image": first_result}
    starts = [spawned_at, *list(ends.values())[:-1]]
    return {name: end - start for (name, end), start in zip(ends.items(), starts, strict=True)}


def pipeline(args) -> dict:
    """The whole product on a folder: read ahead, inspect, store (with overlays of FAILs)."""
    from inspector.engine.pipeline import InspectionPipeline
    from inspector.recipe.io import load_recipe
    from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
    from inspector.services.parallel import registration_workers
    from inspector.sources.files import FileSource
    from inspector.store.database import open_store

    stages: dict[str, list[float]] = {}
    rss: list[tuple[int, float]] = []
    arrivals: list[float] = []  # when each result came, wall clock
    totals: list[float] = []

    def on_result(frame, result, image) -> None:
        arrivals.append(time.time())
        totals.append(result.total_ms)
        for name, ms in result.timings.items():
            stages.setdefault(name, []).append(ms)
        n = len(stages.get("read", ()))
        if n % args.sample_every == 0:
            rss.append((n, rss_mb()))

    # Where the cold start goes: when each step of the start ended, wall clock.
    marks = {"start and imports": time.time()}
    recipe = load_recipe(args.recipe)
    # As `inspector run` starts: the recipe checked and its reference read, torch
    # imported meanwhile (see engine/pipeline.py).
    pipe = InspectionPipeline(recipe, device=args.device, backend=args.backend, validate=True)
    marks["recipe checked, torch imported"] = time.time()
    with tempfile.TemporaryDirectory(prefix="inspector-bench-") as work:
        store = open_store(str(Path(work) / "bench.db"), images_dir=Path(work) / "images")
        marks["database"] = time.time()
        try:
            # The loop's first step anyway (the images' decode size needs the segmented
            # reference); done here, it is timed apart: importing ultralytics, loading
            # the network, segmenting the reference.
            _ = pipe.reference
            marks["network loaded, reference segmented"] = time.time()
            settings = RunSettings(force=True, workers=args.workers, register_ahead=args.register_ahead)
            summary = run_inspection(pipe, store, FileSource([args.images]), settings, RunEvents(result=on_result))
        finally:
            store.close()
    n = summary.inspected
    workers = summary.workers
    steady = steady_rate(arrivals, workers)
    if workers > 1:
        registered_ahead = 0  # images are inspected whole on the workers, registration included
    else:
        registered_ahead = args.register_ahead if args.register_ahead is not None else registration_workers(pipe)
    return {
        "images": n,
        "workers": workers,
        "register_ahead": registered_ahead,
        "verdicts": dict(summary.counts),
        "backend": pipe.segmenter.runtime().backend,
        "elapsed_s": summary.elapsed_s,
        "throughput_ips": steady,
        # each worker's first image is a cold one
        "stages_ms": {name: values[max(1, workers) :] for name, values in stages.items()},
        "totals_ms": totals[max(1, workers) :],
        "store_ms_per_image": 1e3 * summary.store_s / max(1, n),
        "store_cpu_ms_per_image": 1e3 * summary.store_cpu_s / max(1, n),
        "read_cpu_ms_per_image": 1e3 * summary.read_cpu_s / max(1, n),
        "cold_start_s": arrivals[0] - args.spawned_at if arrivals and args.spawned_at else None,
        "cold_start_phases_s": cold_start_phases(args.spawned_at, marks, arrivals[0]) if arrivals else None,
        "rss_mb": rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def network(args) -> dict:
    """The segmenter alone on decoded images: the network-only rate.

    With ``--workers N`` above 1, N threads segment at once, each with a replica of the
    network on its share of the threads: as many networks as the pipeline's workers run
    (which with torch keep the loaded one for one of them).
    """
    import threading

    from inspector.engine.image import read_image
    from inspector.engine.segmenter import FastSAMSegmenter
    from inspector.engine.threads import set_inference_threads
    from inspector.recipe.io import load_recipe
    from inspector.services.parallel import threads_per_worker

    recipe = load_recipe(args.recipe)
    m = recipe.model
    segmenter = FastSAMSegmenter(
        recipe.weights_spec, device=args.device, imgsz=m.imgsz, conf=m.conf, iou=m.iou, backend=args.backend
    )
    segmenter.load()
    images = [read_image(path) for path in _images(args.images)]
    workers = max(1, args.workers or 1)
    threads = threads_per_worker(workers)
    timings: list[dict[str, float]] = []

    def segment_share(k: int, replica) -> None:
        if workers > 1:
            set_inference_threads(threads)
        # Warm-up at this shape and thread count, as the pipeline's first pass (on the reference).
        replica.segment(images[k])
        timings.extend(replica.segment(image).timings for image in images[k::workers])

    started = time.perf_counter()
    if workers == 1:
        # On the thread that loaded it: torch's CPU threads run a forward pass slower on
        # another thread while the first one's pool of threads lives (benchmarks/README.md).
        segment_share(0, segmenter)
    else:
        replicas = [segmenter.replica(threads=threads) for _ in range(workers)]
        pool = [threading.Thread(target=segment_share, args=(k, r)) for k, r in enumerate(replicas)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    stages = {name: [t[name] for t in timings] for name in timings[0]}
    return {
        "backend": segmenter.runtime().backend,
        "workers": workers,
        "stages_ms": stages,
        "totals_ms": [sum(t.values()) for t in timings],
        "elapsed_s": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
    }


def baseline(args) -> dict:
    """ultralytics' FastSAM predict with retina masks, then its prompt step with the part box."""
    from inspector.engine.baseline import UltralyticsBaseline
    from inspector.engine.weights import resolve_weights
    from inspector.recipe.io import load_recipe

    recipe = load_recipe(args.recipe)
    m = recipe.model
    weights = resolve_weights(recipe.weights_spec)
    runner = UltralyticsBaseline(weights.path, imgsz=m.imgsz, conf=m.conf, iou=m.iou, device=args.device)
    boxes = [list(b) for b in recipe.part.boxes] or None
    paths = _images(args.images)
    runner.run(paths[0], boxes)  # warm-up, as the pipeline's first pass (on the reference)
    runs = [runner.run(p, boxes) for p in paths]
    return {
        "stages_ms": {key: [r[key] for r in runs] for key in ("total", "predict", "prompt", "inference")},
        "masks_per_image": float(np.mean([r["masks"] for r in runs])),
        "peak_rss_mb": peak_rss_mb(),
    }


def agreement(args) -> dict:
    """Masks of the ONNX export against the torch model's, instance by instance."""
    from inspector.engine.image import read_image
    from inspector.engine.rules import pairwise_iou
    from inspector.engine.segmenter import FastSAMSegmenter
    from inspector.recipe.io import load_recipe

    recipe = load_recipe(args.recipe)
    m = recipe.model
    common = dict(device="cpu", imgsz=m.imgsz, conf=m.conf, iou=m.iou)
    torch_seg = FastSAMSegmenter(recipe.weights_spec, backend="torch", **common)
    onnx_seg = FastSAMSegmenter(recipe.weights_spec, backend="onnx", **common)
    per_instance: list[float] = []
    counts: list[tuple[int, int]] = []
    for path in _images(args.images):
        image = read_image(path)
        a, b = torch_seg.segment(image), onnx_seg.segment(image)
        counts.append((len(a), len(b)))
        if len(a) and len(b):
            best = pairwise_iou(a.masks, b.masks).max(axis=1)
            per_instance += best.tolist()
        else:
            per_instance += [1.0 if len(a) == len(b) else 0.0] * max(len(a), 1)
    ious = np.array(per_instance)
    return {
        "instances": len(ious),
        "mean_iou": float(ious.mean()),
        "p5_iou": float(np.percentile(ious, 5)),
        "share_at_least_0.95": float((ious >= 0.95).mean()),
        "same_count": float(np.mean([x == y for x, y in counts])),
    }


MODES = {"pipeline": pipeline, "network": network, "baseline": baseline, "agreement": agreement}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inspector.bench.child")
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--spawned-at", type=float, default=None)
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--register-ahead", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    result = MODES[args.mode](args)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
