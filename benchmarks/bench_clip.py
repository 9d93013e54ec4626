"""Text classes: what CLIP costs per image, beside the segmenter's forward pass.

On demo images (640x480), in one run on one machine: the network forward time of the
embedded segmenter and of the FastSAM-s architecture (random weights when the real file
is absent: the cost is the same), then SegmentClassifier.classify with a ViT-B-32 (random
weights, same cost as the released ones) on 1, 2, 4 and 8 candidate segments of the same
image: masked crops, batched image encoding, class probabilities. Also counts how many
times the text encoder runs when a second pipeline asks for the same classes.

    .venv/bin/python benchmarks/bench_clip.py [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

from inspector.engine.architectures import fastsam_s_weights
from inspector.engine.clip import SegmentClassifier, clip_encoder, resolve_clip
from inspector.engine.segmenter import FastSAMSegmenter
from inspector.synthetic.demo_product import demo_scene


def p50(values: list[float]) -> float:
    return statistics.median(values)


def forward_ms(segmenter: FastSAMSegmenter, image: np.ndarray, repeats: int) -> float:
    segmenter.segment(image)
    return p50([segmenter.segment(image).timings["inference"] for _ in range(repeats)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--small", type=int, default=112, help="a smaller crop side to measure too (clip.image_size)")
    args = parser.parse_args()

    import open_clip
    import torch

    scene = demo_scene(np.random.default_rng(4242), defective=True)
    image = scene.image
    work = Path(tempfile.mkdtemp(prefix="bench-clip-"))
    embedded = FastSAMSegmenter(device="cpu")
    fastsam_s, real_s = fastsam_s_weights(work)
    fastsam = FastSAMSegmenter(fastsam_s, device="cpu")
    segmentation = embedded.segment(image)
    forward = {
        "embedded (yolov8n-seg)": forward_ms(embedded, image, args.repeats),
        "FastSAM-s" + ("" if real_s else " (random weights)"): forward_ms(fastsam, image, args.repeats),
    }

    torch.manual_seed(0)
    checkpoint = work / "ViT-B-32-random.pt"
    torch.save(open_clip.create_model("ViT-B-32").state_dict(), checkpoint)
    weights = resolve_clip("ViT-B-32", str(checkpoint))
    encoder = clip_encoder(weights, device="cpu")
    classes = ("scratch", "stain", "hole", "chip")
    classifier = SegmentClassifier(encoder, classes=classes, negatives=("a normal surface",))
    encodes_first = encoder.text_encodes
    SegmentClassifier(encoder, classes=classes, negatives=("a normal surface",))  # a second recipe, same classes
    encodes_second = encoder.text_encodes - encodes_first
    small = SegmentClassifier(
        clip_encoder(weights, device="cpu", image_size=args.small), classes=classes, negatives=("a normal surface",)
    )

    # Candidates: the segment patches of the image, smallest first, as defects would be.
    order = np.argsort(segmentation.masks.reshape(len(segmentation), -1).sum(axis=1))
    patches = [segmentation.mask_in_box(int(i)) for i in order]
    while len(patches) < 8:
        patches += patches

    def timed(which: SegmentClassifier) -> dict[int, float]:
        out = {}
        for n in (1, 2, 4, 8):
            chosen = patches[:n]
            which.classify(image, chosen)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                which.classify(image, chosen)
                times.append((time.perf_counter() - t) * 1e3)
            out[n] = p50(times)
        return out

    classify, classify_small = timed(classifier), timed(small)

    result = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "image": list(scene.image.shape[1::-1]),
        "forward_ms_p50": forward,
        "classify_ms_p50": classify,
        f"classify_ms_p50_at_{args.small}px": classify_small,
        "ratio_to_forward": {
            name: {n: round(ms / fwd, 2) for n, ms in classify.items()} for name, fwd in forward.items()
        },
        "text_encodes": {"first classifier": encodes_first, "second classifier, same classes": encodes_second},
    }
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, image {image.shape[1]}x{image.shape[0]}")
    for name, ms in forward.items():
        print(f"  segmenter forward, {name}: {ms:.0f} ms")
    for n, ms in classify.items():
        ratios = ", ".join(f"{r[n]:.2f}x {name.split()[0]}" for name, r in result["ratio_to_forward"].items())
        print(f"  classify {n} candidate(s) with ViT-B-32: {ms:.0f} ms  ({ratios})")
    for n, ms in classify_small.items():
        ratios = ", ".join(f"{ms / fwd:.2f}x {name.split()[0]}" for name, fwd in forward.items())
        print(f"  classify {n} candidate(s) with ViT-B-32 at {args.small} px: {ms:.0f} ms  ({ratios})")
    print(f"  text encoder runs: {encodes_first} for the first classifier, {encodes_second} for the second")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
