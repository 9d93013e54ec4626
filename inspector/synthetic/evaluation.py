"""How well a segmentation recovers a synthetic scene's ground truth, by instance role.

Parts and defects are measured separately: a model can outline whole parts well and
still miss every small defect, and only the second makes an inspection work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from inspector.engine.types import Segmentation
from inspector.synthetic.scene import Scene


@dataclass(frozen=True)
class InstanceMatch:
    role: str
    label: str
    area: int
    best_iou: float


def _boxes_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def match_scene(segmentation: Segmentation, scene: Scene) -> list[InstanceMatch]:
    """Best mask IoU of any predicted instance for each visible ground-truth instance."""
    predicted: dict[int, np.ndarray] = {}
    matches = []
    for truth in scene.instances:
        if not truth.visible:
            continue
        ys, xs = np.nonzero(truth.mask)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        area = int(truth.mask.sum())
        best = 0.0
        for i, pbox in enumerate(segmentation.boxes):
            if not _boxes_overlap(box, pbox):
                continue
            if i not in predicted:  # full-resolution masks only for candidates, built once
                predicted[i] = segmentation.full_mask(i)
            inter = np.count_nonzero(predicted[i] & truth.mask)
            if inter:
                best = max(best, inter / (area + np.count_nonzero(predicted[i]) - inter))
        matches.append(InstanceMatch(truth.role, truth.label, area, best))
    return matches


def summarise(matches: Iterable[InstanceMatch], *, iou: float = 0.5) -> dict[str, dict[str, float]]:
    """Per role and per defect kind: count, mean best IoU and recall at ``iou``."""
    groups: dict[str, list[float]] = defaultdict(list)
    for m in matches:
        groups[m.role].append(m.best_iou)
        if m.role == "defect":
            groups[f"defect:{m.label}"].append(m.best_iou)
    return {
        name: {
            "count": len(values),
            "mean_iou": float(np.mean(values)),
            f"recall@{iou:g}": float(np.mean(np.asarray(values) >= iou)),
        }
        for name, values in sorted(groups.items())
    }
