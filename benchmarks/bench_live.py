"""A live source under load: preview rate while inspecting, and memory over many frames.

A generated video stands in for a camera, played at its frame rate (a real camera does
not deliver faster than it shoots). Inspection takes the newest frame whenever it is
free, at the model's own pace; the preview callback counts every frame it is shown.
Resident memory is sampled along the way to show that nothing accumulates.

    .venv/bin/python benchmarks/bench_live.py [--frames 10000] [--fps 30] [--model]

Without --model, inspection is a stand-in that sleeps as long as the embedded model's
forward pass takes on this machine (measured first); with --model the segmenter runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspector.sources.camera import CameraSource
from inspector.synthetic.demo_product import demo_background, demo_scene


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def make_video(path: Path, frames: int, fps: float) -> None:
    rng = np.random.default_rng(0)
    background = demo_background()
    parts = [demo_scene(rng, defective=k % 2 == 1, background=background).image for k in range(8)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for k in range(frames):
        writer.write(parts[k % len(parts)])
    writer.release()


class PacedCapture:
    """Plays a file at its frame rate, as a camera would."""

    def __init__(self, source: CameraSource, fps: float) -> None:
        self.source, self.period = source, 1.0 / fps
        self.original = source._raw_frames

    def __call__(self):
        start = time.perf_counter()
        for k, item in enumerate(self.original()):
            delay = start + k * self.period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--model", action="store_true", help="run the embedded segmenter on each inspected frame")
    args = parser.parse_args()

    from inspector.engine.segmenter import FastSAMSegmenter

    segmenter = FastSAMSegmenter(device="cpu")
    segmenter.load()
    probe = demo_scene(np.random.default_rng(1), defective=True).image
    forward_s = float(np.median([segmenter.segment(probe).timings["inference"] for _ in range(5)])) / 1e3
    print(f"embedded model forward: {forward_s * 1e3:.0f} ms per 640x480 frame on this machine")

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "camera.avi"
        make_video(video, args.frames, args.fps)
        shown = []
        source = CameraSource(str(video), live=True, reconnect=False, preview=lambda image, index: shown.append(index))
        source._raw_frames = PacedCapture(source, args.fps)
        samples, inspected = [], 0
        start = time.perf_counter()
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(1.0):
                samples.append((time.perf_counter() - start, rss_mb(), len(shown)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for frame in source.frames():
            if args.model:
                segmenter.segment(frame.image())
            else:
                time.sleep(forward_s)
            inspected += 1
        elapsed = time.perf_counter() - start
        stop_sampling.set()
        sampler.join()

    preview_fps = len(shown) / elapsed
    steady = [m for t, m, _ in samples if t > 10] or [m for _, m, _ in samples]
    print(f"{len(shown)} frames previewed in {elapsed:.0f} s: {preview_fps:.1f} fps (camera {args.fps:.0f} fps)")
    print(
        f"{inspected} frames inspected: {inspected / elapsed:.2f} per second "
        f"({'embedded model' if args.model else 'model-time stand-in'}), the rest skipped (latest frame wins)"
    )
    print(
        f"RSS after warm-up: min {min(steady):.0f} MB, max {max(steady):.0f} MB, drift {steady[-1] - steady[0]:+.0f} MB"
    )


if __name__ == "__main__":
    main()
