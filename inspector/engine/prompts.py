"""FastSAM prompt semantics as pure numpy functions.

FastSAM segments everything once; prompts only choose among those masks, so applying a
recipe again costs almost nothing. The functions here work at whatever resolution the
masks have (the pipeline passes prototype-resolution masks and scaled prompts) and never
build a float array of the masks' size.

Point semantics, named by a recipe:

* ``merge`` (original FastSAM): walk the masks from the largest area to the smallest;
  a mask containing prompt points is added to the result (pixel union) when the last of
  those points, in the order given, is foreground, and removed (pixel subtraction) when
  it is background. One region results.
* ``instances`` (ultralytics): keep every mask that contains a foreground point and no
  background point; when every point is background, every mask that contains none.

A box selects the mask with the highest IoU against the box. A text prompt selects
every mask whose masked crop CLIP finds closer to the text than to the negative classes,
with at least the threshold's probability (not only the best one). Prompts of different
kinds given together are combined by union.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from inspector.engine.types import Segmentation

PointMode = Literal["merge", "instances"]
POINT_MODES: tuple[PointMode, ...] = ("merge", "instances")


@dataclass(frozen=True)
class Selection:
    """What a set of prompts chose.

    Attributes:
        mask: (H, W) bool, the selected region.
        indices: indices of the chosen masks, ascending (in ``merge`` mode, the masks
            that were added to the region).
        steps: (index, add) in order: starting from an empty region, adding (union)
            or removing (subtraction) these masks rebuilds ``mask``. Replaying them on
            masks of another resolution gives the same selection there.
    """

    mask: np.ndarray
    indices: np.ndarray
    steps: tuple[tuple[int, bool], ...] = ()

    def replay(self, mask_of, shape: tuple[int, int]) -> np.ndarray:
        """Rebuild the region from ``mask_of(index)`` masks of the given (H, W) shape."""
        region = np.zeros(shape, bool)
        for index, add in self.steps:
            if add:
                region |= mask_of(index)
            else:
                np.greater(region, mask_of(index), out=region)  # region and not mask, in place
        return region


def check_points(points, labels, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validated integer pixel points and labels; ``shape`` is the image's (H, W)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lab = np.ones(len(pts), np.int64) if labels is None else np.asarray(labels).reshape(-1).astype(np.int64)
    if len(lab) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(lab)} labels; give one label per point")
    if not np.isin(lab, (0, 1)).all():
        raise ValueError(f"point labels must be 1 (foreground) or 0 (background), got {sorted(set(lab.tolist()))}")
    h, w = shape
    for x, y in pts:
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
    return np.floor(pts).astype(np.int64), lab


def check_boxes(boxes, shape: tuple[int, int]) -> np.ndarray:
    """Validated integer pixel boxes; ``shape`` is the image's (H, W)."""
    bxs = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = shape
    for x1, y1, x2, y2 in bxs:
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ValueError(
                f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty or outside the {w}x{h} image "
                "(need 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height)"
            )
    return bxs.astype(np.int64)


def _area(mask: np.ndarray) -> int:
    # count_nonzero on one contiguous mask is a vectorised byte count; summing a
    # stacked (N, H, W) array would first widen every pixel to an integer.
    return int(np.count_nonzero(mask))


def select_by_boxes(masks: np.ndarray, boxes) -> np.ndarray:
    """Index of the best-IoU mask for each box ((M, 4) x1, y1, x2, y2 pixels)."""
    bxs = check_boxes(boxes, masks.shape[1:])
    if len(masks) == 0 or len(bxs) == 0:
        return np.zeros(0, np.int64)
    areas = np.array([_area(m) for m in masks], np.float64)
    chosen = []
    for x1, y1, x2, y2 in bxs:
        inside = np.array([_area(m[y1:y2, x1:x2]) for m in masks], np.float64)
        union = (x2 - x1) * (y2 - y1) + areas - inside
        chosen.append(int(np.argmax(inside / union)))
    return np.unique(np.array(chosen, np.int64))


def _point_hits(masks: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, K) bool: which mask contains which point."""
    return masks[:, pts[:, 1], pts[:, 0]]


def select_instances(masks: np.ndarray, points, labels=None) -> np.ndarray:
    """Indices chosen by ultralytics' ``instances`` point semantics."""
    pts, lab = check_points(points, labels, masks.shape[1:])
    if len(masks) == 0 or len(pts) == 0:
        return np.zeros(0, np.int64)
    hits = _point_hits(masks, pts)
    keep = hits[:, lab == 1].any(axis=1) if lab.any() else np.ones(len(masks), bool)
    keep &= ~hits[:, lab == 0].any(axis=1)
    return np.flatnonzero(keep)


def merge_steps(masks: np.ndarray, points, labels=None) -> tuple[tuple[int, bool], ...]:
    """The add / remove walk of the original FastSAM ``merge`` point semantics."""
    pts, lab = check_points(points, labels, masks.shape[1:])
    if len(masks) == 0 or len(pts) == 0:
        return ()
    hits = _point_hits(masks, pts)
    touched = np.flatnonzero(hits.any(axis=1))
    # The last point (in prompt order) inside a mask decides whether it adds or removes.
    last_hit = hits.shape[1] - 1 - np.argmax(hits[touched, ::-1], axis=1)
    adds = lab[last_hit] == 1
    if adds.all():
        # Order only matters when something is subtracted: skip the area sort.
        return tuple((int(i), True) for i in touched)
    areas = np.array([_area(masks[i]) for i in touched])
    return tuple((int(touched[k]), bool(adds[k])) for k in np.argsort(-areas, kind="stable"))


def select_masks(
    masks: np.ndarray,
    *,
    points=None,
    labels=None,
    boxes=None,
    mode: PointMode = "merge",
    also=(),
) -> Selection:
    """Choose among FastSAM's masks with point and box prompts.

    Args:
        masks: (N, H, W) bool, every segment of one image.
        points: (K, 2) pixel x, y.
        labels: (K,) 1 foreground / 0 background; all foreground when omitted.
        boxes: (M, 4) pixel x1, y1, x2, y2.
        mode: point semantics, ``"merge"`` or ``"instances"`` (see the module docstring).
        also: indices chosen by other prompts (text), added to the selection.

    Returns:
        The selected region and the indices of the chosen masks. No masks, or no
        prompts, give an empty selection.

    Raises:
        ValueError: a prompt outside the image, an empty box, mismatched labels or an
            unknown mode.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if masks.dtype != bool:
        masks = masks.astype(bool)
    if mode not in POINT_MODES:
        raise ValueError(f"unknown point mode {mode!r}; expected one of {', '.join(POINT_MODES)}")

    steps: list[tuple[int, bool]] = []
    if points is not None:
        if mode == "merge":
            steps.extend(merge_steps(masks, points, labels))
        else:
            steps.extend((int(i), True) for i in select_instances(masks, points, labels))
    if boxes is not None:
        # Adding the box picks after the point walk is the union of the two selections.
        steps.extend((int(i), True) for i in select_by_boxes(masks, boxes))
    steps.extend((int(i), True) for i in also)
    selection = Selection(mask=np.zeros(masks.shape[1:], bool), indices=np.zeros(0, np.int64), steps=tuple(steps))
    region = selection.replay(masks.__getitem__, masks.shape[1:])
    added = np.unique(np.array([i for i, add in steps if add], np.int64))
    return Selection(mask=region, indices=added, steps=selection.steps)


def select_segments(
    segmentation: Segmentation,
    *,
    points=None,
    labels=None,
    boxes=None,
    mode: PointMode = "merge",
    also=(),
) -> Selection:
    """Apply image-pixel prompts to a :class:`Segmentation` on its low-resolution masks.

    Prompts are checked against the image (not the mask grid), so a point outside the
    image is an error here too. ``Selection.mask`` is at mask resolution; use
    :meth:`Segmentation.full_region` for the image-resolution region.
    """
    w, h = segmentation.image_size
    if points is not None:
        pts, labels = check_points(points, labels, (h, w))
        points = segmentation.lowres_points(pts + 0.5)  # pixel centres
    if boxes is not None:
        boxes = segmentation.lowres_boxes(check_boxes(boxes, (h, w)))
    return select_masks(segmentation.masks, points=points, labels=labels, boxes=boxes, mode=mode, also=also)


def select_text(segmentation: Segmentation, image: np.ndarray, classifier, candidates=None) -> np.ndarray:
    """Indices of the segments a text prompt selects.

    Args:
        segmentation: every segment of ``image``.
        image: the (H, W, 3) BGR image that was segmented.
        classifier: a :class:`~inspector.engine.clip.SegmentClassifier` whose classes
            are the prompt texts and whose negatives are what they are weighed against.
        candidates: the segment indices to consider (default: all); cheap filters such
            as area go first, because every candidate costs one CLIP image encoding.
    """
    indices = np.arange(len(segmentation)) if candidates is None else np.asarray(candidates, np.int64)
    if len(indices) == 0:
        return np.zeros(0, np.int64)
    results = classifier.classify(image, [segmentation.mask_in_box(int(i)) for i in indices])
    chosen = [int(i) for i, r in zip(indices, results, strict=True) if r.label is not None and not r.negative]
    return np.array(chosen, np.int64)
