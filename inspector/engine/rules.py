"""From segments to defects and a verdict, on low-resolution masks only.

A candidate defect is a segment that lies mostly on the part, is not the part, not a
normal surface, not ignored, within the area limits, and not a segment the golden
reference part also has. A reference feature (a print, a component) that the image
lacks is a defect too. Counting them against the allowed number gives the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from inspector.recipe.model import DefectRules

SEGMENT_LABEL = "defect"
MISSING_LABEL = "missing feature"
DIFFERENCE_LABEL = "difference"  # a visible change from the reference no segment explains
ANOMALY_LABEL = "anomaly"  # a region unlike the good parts a recipe was taught with
NOT_REGISTERED_LABEL = "not registered"  # a part its segments could not be checked on


@dataclass(frozen=True)
class Candidate:
    """A defect found on the low-resolution grid.

    ``index`` is the segment's index in the image's segmentation, or, for a missing
    feature, in the reference segmentation (-1 for a defect with a ``patch`` of its own).
    """

    index: int
    label: str
    score: float
    area: float  # image pixels
    missing: bool = False
    # Its own mask, ((x0, y0), bool patch) in reference pixels, for a defect no segment
    # outlines (an anomaly region); then ``index`` is -1.
    patch: tuple[tuple[int, int], np.ndarray] | None = None


def _areas(masks: np.ndarray) -> np.ndarray:
    return masks.sum(axis=(1, 2), dtype=np.float64)  # (0, h, w) too: no reshape(0, -1)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two stacks of low-resolution bool masks."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1.0)


def on_grid(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample (N, h, w) masks onto another low-resolution grid (nearest)."""
    if masks.shape[1:] == shape:
        return masks
    return (
        np.stack(
            [cv2.resize(m.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0 for m in masks]
        )
        if len(masks)
        else np.zeros((0, *shape), bool)
    )


def expected_features(
    masks: np.ndarray, *, part_region: np.ndarray, part_indices: set[int], rules: DefectRules, pixel_area: float
) -> np.ndarray:
    """Indices of reference segments that are features of a good part (prints, components)."""
    if len(masks) == 0:
        return np.zeros(0, np.int64)
    areas = _areas(masks)
    inside = (masks & part_region).reshape(len(masks), -1).sum(1) / np.maximum(areas, 1)
    area_px = areas * pixel_area
    keep = (inside >= rules.inside_fraction) & (area_px >= rules.min_area) & (area_px <= rules.max_area)
    keep[list(part_indices)] = False
    return np.flatnonzero(keep)


def _suppress_duplicates(candidates: list[Candidate], masks: np.ndarray) -> list[Candidate]:
    """One defect, one report: drop candidates mostly covered by a better-scoring one."""
    kept: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: -c.score):
        m = masks[c.index]
        area = max(int(m.sum()), 1)
        if all((m & masks[k.index]).sum() < 0.6 * min(area, masks[k.index].sum()) for k in kept):
            kept.append(c)
    return kept


def find_defects(
    masks: np.ndarray,
    scores: np.ndarray,
    *,
    pixel_area: float,
    part_region: np.ndarray,
    excluded: set[int],
    ignore_region: np.ndarray,
    rules: DefectRules,
    reference_masks: np.ndarray | None = None,
    reference_features: np.ndarray | None = None,
    min_score: float = 0.0,
    changed: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Candidate]:
    """Candidate defects of one image.

    Args:
        masks: (N, h, w) bool segments of the image, in the reference frame.
        scores: (N,) segment confidences.
        pixel_area: image pixels per low-resolution pixel.
        part_region: (h, w) bool, where the part is (everything when the recipe has no
            part prompts).
        excluded: indices of the part and normal segments.
        ignore_region: (h, w) bool don't-care area.
        rules: the recipe's defect rules.
        reference_masks: the reference image's segments on the same grid, for matching.
        reference_features: indices into ``reference_masks`` that a good part must show.
        min_score: confidence a segment needs to be a defect; segments under it still
            match reference features and cover them.
        changed: for segment indices, the share of each segment's pixels that differs
            from the reference (see engine/change.py); with ``rules.changed_fraction``,
            a segment that changed less is no defect, and a segment under
            ``min_score`` is one when it changed by ``CLEAR_CHANGE``. Checked before
            duplicates are suppressed, so that an unchanged piece of surface does not
            hide the defect it covers.
    """
    found: list[Candidate] = []
    if len(masks):
        areas = _areas(masks)
        inside = (masks & part_region).reshape(len(masks), -1).sum(1) / np.maximum(areas, 1)
        ignored = (masks & ignore_region).reshape(len(masks), -1).sum(1) / np.maximum(areas, 1)
        part_area = max(float(part_region.sum()), 1.0)
        area_px = areas * pixel_area
        # With the change check, a segment under min_score may still be a defect when
        # its pixels say so clearly (see CLEAR_CHANGE).
        weighed = rules.changed_fraction > 0 and changed is not None
        ok = (inside >= rules.inside_fraction) & (ignored < 0.5) & ((scores >= min_score) | weighed)
        ok &= (area_px >= rules.min_area) & (area_px <= rules.max_area)
        ok &= areas < 0.5 * part_area  # the part itself, seen twice, is not a defect on it
        ok[list(excluded)] = False
        candidates = np.flatnonzero(ok)
        if rules.match_reference and reference_masks is not None and len(candidates) and len(reference_masks):
            best = pairwise_iou(masks[candidates], reference_masks).max(axis=1)
            candidates = candidates[best < rules.match_iou]
        if weighed and len(candidates):
            needed = np.where(scores[candidates] >= min_score, rules.changed_fraction, CLEAR_CHANGE)
            candidates = candidates[changed(candidates) >= np.maximum(needed, rules.changed_fraction)]
        found = [Candidate(int(i), SEGMENT_LABEL, float(scores[i]), float(area_px[i])) for i in candidates]
        found = _suppress_duplicates(found, masks)

    if rules.missing_features and reference_masks is not None and reference_features is not None:
        features = reference_masks[np.asarray(reference_features, np.int64)]
        covers = _best_covers(features, masks, excluded)
        for ref_index, feature_area, coverage in zip(reference_features, _areas(features), covers, strict=True):
            if coverage < _PRESENT_COVER:
                area = float(feature_area) * pixel_area
                found.append(Candidate(int(ref_index), MISSING_LABEL, 1.0 - coverage, area, missing=True))
    return found


# A segment the network is unsure of (under the recipe's confidence) is a defect when at
# least this share of it visibly changed: the pixels make up for the weak score. On good
# demo parts, unchanged pieces of surface measured about 5 %.
CLEAR_CHANGE = 0.5

_PRESENT_COVER = 0.5  # a feature half covered by some segment of the image is there
_COVER_SIZE = 10.0  # ...as long as that segment is not the whole part or background


def _best_covers(features: np.ndarray, masks: np.ndarray, excluded: set[int]) -> np.ndarray:
    """For each of the (F, h, w) ``features``, how much of it the best-fitting image
    segment covers (0 to 1).

    The model may split or merge a print differently from one image to the next (one
    band, or two halves); coverage by a segment of similar size tolerates that, where
    an IoU test would call a half-band "missing".
    """
    areas = _areas(features)
    if len(masks) == 0 or len(features) == 0:
        return np.zeros(len(features))
    flat = masks.reshape(len(masks), -1).astype(np.float32)
    inter = flat @ features.reshape(len(features), -1).astype(np.float32).T  # (N, F), exact up to 2**24 pixels
    usable = _areas(masks)[:, None] <= _COVER_SIZE * areas[None, :]
    usable[list(excluded), :] = False
    best = np.where(usable, inter, 0.0).max(axis=0)
    return np.where(areas > 0, best / np.maximum(areas, 1.0), 0.0)
