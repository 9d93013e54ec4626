"""What a user would write with ultralytics alone: the baseline of the benchmarks.

``FastSAM(weights).predict(path, retina_masks=True)`` segments everything with masks at
the image's resolution, then ``predictor.prompt`` picks the part with the recipe's box,
as the ultralytics documentation shows. Same weights, image size and thresholds as
Inspector's segmenter, so the two can be timed side by side.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from inspector.engine.checkpoint import read_checkpoint
from inspector.engine.segmenter import pick_device


class UltralyticsBaseline:
    """ultralytics' FastSAM predictor with its own prompt step."""

    def __init__(self, weights: Path, *, imgsz: int = 640, conf: float = 0.25, iou: float = 0.7, device="cpu"):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ["YOLO_AUTOINSTALL"] = "0"
        from ultralytics import FastSAM

        read_checkpoint(Path(weights))  # the same refusal of files that would run code as ours
        self.model = FastSAM(str(weights))
        self.options = dict(retina_masks=True, imgsz=imgsz, conf=conf, iou=iou, verbose=False)
        self.options["device"] = str(pick_device(device))

    def run(self, path: Path, boxes: list[list[float]] | None = None) -> dict:
        """Segment one image file and prompt it; returns timings (ms) and mask counts."""
        t0 = time.perf_counter()
        results = self.model.predict(str(path), **self.options)
        t1 = time.perf_counter()
        prompted = self.model.predictor.prompt(results, bboxes=boxes) if boxes else results
        t2 = time.perf_counter()
        result = results[0]
        return {
            "total": (t2 - t0) * 1e3,
            "predict": (t1 - t0) * 1e3,
            "prompt": (t2 - t1) * 1e3,
            "inference": float(result.speed.get("inference", 0.0)),
            "masks": 0 if result.masks is None else len(result.masks),
            "selected": 0 if prompted[0].masks is None else len(prompted[0].masks),
        }
