"""``inspector demo``: fresh photographs of the demo product, segmented by the embedded model.

Each run draws a new set of good and defective parts (ground truth kept beside the
images), segments them, writes overlays and prints how many parts and defects the model
outlined. Nothing here is precomputed: the numbers are this run's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from inspector.engine.image import write_image
from inspector.engine.overlay import draw_regions
from inspector.synthetic.demo_product import demo_scene
from inspector.synthetic.evaluation import match_scene, summarise


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="segment freshly generated demo images with the embedded model",
        description="Generate good and defective demo parts, segment them and compare with the ground truth.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: ./demo-output)")
    p.add_argument("--count", type=int, default=24, help="number of images (default: 24, half defective)")
    p.add_argument("--seed", type=int, default=None, help="seed of the image set (default: a new one each run)")
    p.add_argument("--weights", default=None, help="segmenter weights (default: embedded model)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from inspector.engine.segmenter import FastSAMSegmenter

    if args.count < 1:
        raise SystemExit("inspector demo: --count must be at least 1")
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 2**31
    rng = np.random.default_rng(seed)
    images_dir, overlays_dir = args.out / "images", args.out / "overlays"
    segmenter = FastSAMSegmenter(args.weights)
    print(f"demo set seed {seed}: {args.count} images of the demo product -> {args.out}")
    segmenter.load()

    matches, truth, forward_ms = [], {}, []
    for k in range(args.count):
        defective = k % 2 == 1
        scene = demo_scene(rng, defective=defective)
        name = f"part_{k:04d}.png"
        write_image(images_dir / name, scene.image)
        segmentation = segmenter.segment(scene.image)
        forward_ms.append(segmentation.timings["inference"])
        matches += match_scene(segmentation, scene)
        masks = [segmentation.full_mask(i) for i in range(len(segmentation))]
        write_image(overlays_dir / name, draw_regions(scene.image, masks))
        truth[name] = [{"kind": d.label, "area_px": int(d.mask.sum()), "box": _box(d.mask)} for d in scene.defects]
        _progress(k + 1, args.count)
    (args.out / "ground_truth.json").write_text(json.dumps({"seed": seed, "defects": truth}, indent=2))

    summary = summarise(matches)
    result = {
        "seed": seed,
        "images": args.count,
        "model": segmenter.identity.to_dict(),
        "median_forward_ms": float(np.median(forward_ms)),
        "instances": summary,
        "output": str(args.out),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"model {segmenter.identity.name} ({segmenter.identity.sha256[:12]}), "
        f"median forward {result['median_forward_ms']:.0f} ms per image"
    )
    for name, s in summary.items():
        print(
            f"  {name:<22} {s['count']:>4} instances   outlined (IoU >= 0.5): {s['recall@0.5']:6.1%}"
            f"   mean IoU {s['mean_iou']:.2f}"
        )
    print(f"images, overlays and ground truth in {args.out}")
    return 0


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
