"""What a recipe selects in a segmentation: the part, normal surfaces, ignored areas,
the window around the part, and the candidate defects the rules leave.

Pure functions of a :class:`Segmentation` and a recipe, on low-resolution masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inspector.engine.prompts import select_masks, select_segments
from inspector.engine.rules import find_defects
from inspector.engine.types import Segmentation
from inspector.errors import EngineError
from inspector.recipe.model import Recipe


class PartNotFound(EngineError):
    """The part prompts selected nothing in an image."""


@dataclass(frozen=True)
class Regions:
    """What a recipe's prompts select in one segmentation, on its low-resolution grid."""

    part_indices: frozenset[int]
    part_region: np.ndarray  # bool; everything when the recipe has no part prompts
    normal_indices: frozenset[int]
    ignore_region: np.ndarray  # bool


def solid(mask: np.ndarray) -> np.ndarray:
    """Each blob of ``mask`` filled out to its convex hull.

    A defect changes how a part is segmented: a hole or a stain may be cut out of the
    part's mask and a chip bites into its outline. Searching for defects inside the
    hull keeps those within the part region they belong to.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(filled, [cv2.convexHull(c) for c in contours], 1)
    return filled.astype(bool) | mask


# A piece of the part's segments this far from every part box (a share of the box's
# longer side) is background the segment took in; nearer, it may be the part reaching
# past a box drawn inside it.
_NEAR_BOX = 0.25


def pieces_near_prompts(region: np.ndarray, boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The connected pieces of ``region`` near one of the (x1, y1, x2, y2) ``boxes`` or
    holding one of the (x, y) foreground ``points`` (all on the region's grid); all of it
    when none is.

    A segment the part prompts select can also take in a strip of background far from
    the part (one piece of the mask, but not of the part). Left in the part region, it
    would be searched for defects, widen the network's window, and give the
    registration features that do not move with the part.
    """
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    if count <= 2:
        return region
    keep = np.zeros(count, bool)
    h, w = region.shape
    for x1, y1, x2, y2 in boxes:
        near = _NEAR_BOX * max(x2 - x1, y2 - y1)
        keep[
            labels[max(0, int(y1 - near)) : int(np.ceil(y2 + near)), max(0, int(x1 - near)) : int(np.ceil(x2 + near))]
        ] = True
    for x, y in points:
        keep[labels[min(h - 1, int(y)), min(w - 1, int(x))]] = True
    keep[0] = False
    return keep[labels] if keep.any() else region


def select_regions(segmentation: Segmentation, recipe: Recipe) -> Regions:
    """Apply the recipe's part, normal and ignore prompts (recipe pixels = image pixels).

    Raises:
        PartNotFound: the recipe has part prompts and they select nothing.
    """
    prompts = recipe.part
    w, h = segmentation.lowres_size
    if prompts.boxes or prompts.points:
        points = np.array([p[:2] for p in prompts.points]) if prompts.points else None
        labels = np.array([p[2] for p in prompts.points]) if prompts.points else None
        boxes = np.array(prompts.boxes) if prompts.boxes else None
        selection = select_segments(
            segmentation, points=points, labels=labels, boxes=boxes, mode=recipe.model.point_mode
        )
        if not selection.mask.any():
            raise PartNotFound("part not found: the recipe's part prompts select no segment in this image")
        part_indices, part_region = frozenset(int(i) for i in selection.indices), solid(selection.mask)
        # The recipe's part boxes belong to the part region too: a segmentation that
        # misses a strip of the part must not hide the defects on that strip.
        boxes = segmentation.lowres_boxes(np.array(prompts.boxes).reshape(-1, 4))
        for x1, y1, x2, y2 in boxes.astype(int):
            part_region[y1:y2, x1:x2] = True
        if prompts.boxes:  # with points only nothing says where the part ends
            foreground = [p[:2] for p in prompts.points if len(p) < 3 or p[2]]
            anchors = segmentation.lowres_points(np.array(foreground).reshape(-1, 2) + 0.5)  # pixel centres
            part_region = pieces_near_prompts(part_region, boxes, anchors)
    else:
        part_indices, part_region = frozenset(), np.ones((h, w), bool)
    normal: frozenset[int] = frozenset()
    if recipe.normal_points:
        points = segmentation.lowres_points(np.array(recipe.normal_points) + 0.5)
        normal = frozenset(int(i) for i in select_masks(segmentation.masks, points=points, mode="instances").indices)
    ignore = np.zeros((h, w), bool)
    if recipe.ignore_boxes:
        for x1, y1, x2, y2 in segmentation.lowres_boxes(np.array(recipe.ignore_boxes)).astype(int):
            ignore[y1:y2, x1:x2] = True
    return Regions(part_indices, part_region, normal, ignore)


def part_outline(segmentation: Segmentation, regions: Regions) -> np.ndarray | None:
    """The part's segments as one filled silhouette (low-res bool); None without part segments."""
    if not regions.part_indices:
        return None
    return solid(segmentation.masks[sorted(regions.part_indices)].any(axis=0))


_WINDOW_MARGIN = 0.1  # of the part's longer side: room for a part that sits a little off


def part_window(segmentation: Segmentation, part_region: np.ndarray, boxes) -> tuple[int, int, int, int]:
    """The window around the part on the reference: its region and boxes, plus a margin.

    ``part_region`` is on the segmentation's low-resolution grid; the result is
    (x1, y1, x2, y2) in image pixels, inside the image.
    """
    width, height = segmentation.image_size
    ys, xs = np.nonzero(part_region)
    if len(xs) == 0:
        return 0, 0, width, height
    ox, oy = segmentation.origin
    corners = [
        (xs.min() / segmentation.scale + ox, ys.min() / segmentation.scale + oy),
        ((xs.max() + 1) / segmentation.scale + ox, (ys.max() + 1) / segmentation.scale + oy),
    ]
    corners += [(x1, y1) for x1, y1, _, _ in boxes] + [(x2, y2) for _, _, x2, y2 in boxes]
    (x1, y1), (x2, y2) = np.min(corners, axis=0), np.max(corners, axis=0)
    margin = _WINDOW_MARGIN * max(x2 - x1, y2 - y1)
    return (
        max(0, int(np.floor(x1 - margin))),
        max(0, int(np.floor(y1 - margin))),
        min(width, int(np.ceil(x2 + margin))),
        min(height, int(np.ceil(y2 + margin))),
    )


def defect_candidates(
    segmentation: Segmentation,
    regions: Regions,
    rules,
    *,
    reference_masks: np.ndarray | None = None,
    reference_features: np.ndarray | None = None,
    min_score: float = 0.0,
    changed=None,
):
    """The rules applied to one segmentation and its selected regions (see ``rules.find_defects``)."""
    return find_defects(
        segmentation.masks,
        segmentation.scores,
        pixel_area=1.0 / segmentation.scale**2,
        part_region=regions.part_region,
        excluded=set(regions.part_indices | regions.normal_indices),
        ignore_region=regions.ignore_region,
        rules=rules,
        reference_masks=reference_masks,
        reference_features=reference_features,
        min_score=min_score,
        changed=changed,
    )


def outline_of(mask: np.ndarray) -> np.ndarray:
    """Largest outer contour of a bool mask, simplified to about a pixel, as (K, 2) float32."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros((0, 2), np.float32)
    x0, y0 = xs.min(), ys.min()
    crop = mask[y0 : ys.max() + 1, x0 : xs.max() + 1].astype(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 0.7, True).reshape(-1, 2)
    return (contour + [x0, y0]).astype(np.float32)
