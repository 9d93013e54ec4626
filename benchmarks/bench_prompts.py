"""Prompt selection: Inspector's select_masks beside ultralytics' FastSAMPredictor.prompt.

Both get the same 100 masks of a 1280x1024 image (ultralytics as the uint8 (N, H, W)
tensor its FastSAM predictor produces with retina_masks=True, Inspector as the bool
array over the same memory) and the same prompts; the two are timed alternately in one
run and the ratio printed. The peak memory that select_masks allocates is traced to
show that no (N, H, W) float array is ever built. Last, the embedded segmenter's
per-stage times on an image of the same size.

    .venv/bin/python benchmarks/bench_prompts.py [--repeats 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

from inspector.engine.prompts import select_masks

WIDTH, HEIGHT, N_MASKS = 1280, 1024, 100


def make_masks(rng: np.random.Generator) -> np.ndarray:
    """100 overlapping ellipses and boxes from a few pixels to most of the image."""
    yy, xx = np.ogrid[0:HEIGHT, 0:WIDTH]
    masks = np.zeros((N_MASKS, HEIGHT, WIDTH), bool)
    for i in range(N_MASKS):
        cx, cy = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        rx, ry = np.exp(rng.uniform(np.log(4), np.log(500), size=2))
        if i % 2:
            masks[i] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        else:
            masks[i] = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
    return masks


def ultralytics_result(masks: np.ndarray):
    import torch
    from ultralytics.engine.results import Results

    data = torch.from_numpy(masks.view(np.uint8))  # the same bytes, as ultralytics' uint8 masks
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9, 0])
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    return Results(
        image, path="bench.png", names={0: "object"}, boxes=torch.tensor(boxes, dtype=torch.float32), masks=data
    )


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def peak_allocation(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def segmenter_stages(repeats: int) -> dict[str, float]:
    from inspector.engine.segmenter import FastSAMSegmenter
    from inspector.synthetic.scene import generate_scene

    scene = generate_scene(np.random.default_rng(99), size=(WIDTH, HEIGHT), n_parts=3)
    segmenter = FastSAMSegmenter(device="cpu")
    t0 = time.perf_counter()
    segmenter.load()
    segmenter.segment(scene.image)  # the first pass at a shape chooses its kernels
    load_ms = (time.perf_counter() - t0) * 1e3
    runs = [segmenter.segment(scene.image) for _ in range(repeats)]
    stages = {k: statistics.median(r.timings[k] for r in runs) for k in runs[0].timings}
    seg = runs[-1]
    full = timed(lambda: [seg.full_mask(i) for i in range(min(5, len(seg)))], repeats)
    return {
        "load_and_warmup_ms": load_ms,
        **{f"{k}_ms": v for k, v in stages.items()},
        "instances": len(seg),
        "full_masks_x5_ms": statistics.median(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-segmenter", action="store_true")
    args = parser.parse_args()

    from ultralytics.models.fastsam import FastSAMPredictor

    rng = np.random.default_rng(0)
    masks = make_masks(rng)
    result = ultralytics_result(masks)
    predictor = FastSAMPredictor(overrides={"device": "cpu", "verbose": False})

    points = np.array([[200, 300], [640, 512], [900, 800], [1100, 150], [400, 900]])
    labels = np.array([1, 1, 0, 1, 0])
    boxes = np.array([[100, 100, 500, 400], [600, 500, 1200, 1000], [50, 600, 300, 1000]])
    cases = {
        "points, merge (FastSAM)": (
            lambda: select_masks(masks, points=points, labels=labels, mode="merge"),
            lambda: predictor.prompt(result, points=points, labels=labels),
        ),
        "points, instances": (
            lambda: select_masks(masks, points=points, labels=labels, mode="instances"),
            lambda: predictor.prompt(result, points=points, labels=labels),
        ),
        "boxes": (
            lambda: select_masks(masks, boxes=boxes),
            lambda: predictor.prompt(result, bboxes=boxes),
        ),
    }
    report: dict[str, dict] = {"image": f"{WIDTH}x{HEIGHT}", "masks": N_MASKS, "cases": {}}
    float_stack = N_MASKS * HEIGHT * WIDTH * 4
    print(f"{N_MASKS} masks of a {WIDTH}x{HEIGHT} image, median of {args.repeats} runs each, alternating")
    print(f"{'case':<26}{'inspector ms':>14}{'ultralytics ms':>16}{'speed-up':>10}{'peak alloc MB':>15}")
    for name, (ours, theirs) in cases.items():
        ours(), theirs()  # warm caches on both sides
        ours_t, theirs_t = [], []
        for _ in range(args.repeats):  # interleave so load on the machine hits both alike
            ours_t += timed(ours, 1)
            theirs_t += timed(theirs, 1)
        mine, ref = statistics.median(ours_t), statistics.median(theirs_t)
        peak = peak_allocation(ours)
        report["cases"][name] = {
            "inspector_ms": mine,
            "ultralytics_ms": ref,
            "speedup": ref / mine,
            "peak_alloc_bytes": peak,
        }
        print(f"{name:<26}{mine:>14.2f}{ref:>16.2f}{ref / mine:>9.1f}x{peak / 1e6:>15.1f}")
    worst = max(c["peak_alloc_bytes"] for c in report["cases"].values())
    print(
        f"largest allocation peak {worst / 1e6:.1f} MB; an (N, H, W) float32 stack would be {float_stack / 1e6:.0f} MB"
    )

    if not args.skip_segmenter:
        stages = segmenter_stages(max(3, args.repeats // 5))
        report["segmenter"] = stages
        print("embedded segmenter on the same image size (CPU, median):")
        for k, v in stages.items():
            print(f"  {k:<22}{v:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
