"""Compare: visible differences from the reference inside the part that no reported
defect (or ignored area) explains (``engine/change.py``); for recipes with
``defects.differences``, on finely registered images only."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.engine.change import Difference, differences
from inspector.engine.regions import outline_of
from inspector.engine.rules import DIFFERENCE_LABEL
from inspector.engine.stages import ImageWork, Stage, StageContext
from inspector.engine.stages.outline import bounds, to_image
from inspector.engine.types import Finding


def _finding(blob: Difference, per_reference_pixel: float, origin, area: float, matrix) -> Finding:
    # Pixel centres of the compared image, in the reference's pixels, then the image's.
    outline = (outline_of(blob.mask) + np.float32(blob.origin) + 0.5) / per_reference_pixel - 0.5
    outline = to_image(outline + np.float32(origin), matrix).astype(np.float32)
    return Finding(DIFFERENCE_LABEL, min(1.0, blob.change), area, bounds(outline), outline)


def run(work: ImageWork, context: StageContext) -> None:
    if not work.registration.fine:  # the comparison would mostly see the registration's error
        return
    recipe, reference, segmentation, regions = context.recipe, context.reference, work.segmentation, work.regions
    reported = regions.ignore_region.copy()
    for c in work.candidates:
        reported |= (work.reference_masks if c.missing else segmentation.masks)[c.index]
    image = work.registration.network_input
    limit = recipe.model.imgsz
    if max(image.shape[:2]) > limit:  # not warped (no alignment): compare at the network's size
        f = limit / max(image.shape[:2])
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]

    def full(grid_mask: np.ndarray) -> np.ndarray:
        return cv2.resize(grid_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0

    blobs = differences(image, reference.view_at((w, h)), full(regions.part_region))
    if not blobs:
        return
    explained = full(reported)
    x0, y0, x1, _ = reference.window_or_image
    per_reference_pixel = w / (x1 - x0)
    rules = recipe.defects
    for blob in blobs:
        (bx, by), mask = blob.origin, blob.mask
        if explained[by : by + mask.shape[0], bx : bx + mask.shape[1]][mask].mean() >= 0.1:
            continue  # a reported defect, or ignored
        area = float(mask.sum()) / per_reference_pixel**2
        if rules.min_area <= area <= rules.max_area:
            work.unsegmented.append(_finding(blob, per_reference_pixel, (x0, y0), area, work.registration.matrix))


STAGE = Stage("compare", run, timing="rules", wanted=lambda recipe: recipe.uses_segments and recipe.defects.differences)
