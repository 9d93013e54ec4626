"""Outline: each defect as it is reported, in the inspected image's pixels.

Full resolution is built only for what is reported, and only inside each segment's box
(``masks``, the step before classifying); here each becomes a polygon, a box and an area.
"""

from __future__ import annotations

import numpy as np

from inspector.engine.align import transform_points
from inspector.engine.regions import outline_of
from inspector.engine.stages import ImageWork, Stage, StageContext
from inspector.engine.types import Finding


def to_image(points: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """(K, 2) reference pixels in the image's pixels (``matrix`` maps image to reference)."""
    return points if matrix is None else transform_points(points, np.linalg.inv(matrix))


def bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    """The box (x1, y1, x2, y2) around (K, 2) points."""
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def masks(work: ImageWork, context: StageContext) -> None:
    """Each candidate's full-resolution mask, inside its box only."""
    reference = context.reference.segmentation
    work.defects = [
        (c, c.patch if c.patch is not None else (reference if c.missing else work.segmentation).mask_in_box(c.index))
        for c in work.candidates
    ]


def _finding(candidate, patch, source, matrix) -> Finding:
    (x0, y0), mask = patch
    outline = outline_of(mask)
    if len(outline):
        outline = to_image(outline + np.array([x0, y0], np.float32), matrix)
    area = float(mask.sum()) if not candidate.missing else candidate.area
    if len(outline):
        box = bounds(outline)
    else:  # too small to outline: its box, in the image's pixels like the outlines
        x1, y1, x2, y2 = (float(v) for v in source.boxes[candidate.index])
        box = bounds(to_image(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32), matrix))
    return Finding(candidate.label, candidate.score, area, box, outline)


def run(work: ImageWork, context: StageContext) -> None:
    matrix = work.registration.matrix
    reference = context.reference.segmentation
    findings = tuple(
        _finding(c, patch, reference if c.missing else work.segmentation, matrix) for c, patch in work.defects
    )
    work.findings = findings + tuple(work.unsegmented)


MASKS = Stage("masks", masks, timing="outline")
STAGE = Stage("outline", run, timing="outline")
