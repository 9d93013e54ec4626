"""Anomaly: what does not look like the good parts a recipe was taught with.

For a taught recipe (``inspector teach``): the image, registered as far as it would
register, is shown to the feature network over the reference's window (the *view*,
``resolution`` pixels on its shorter side); each patch's distance to the nearest
patch of the good parts (``engine/normal.py``) makes the anomaly map. Inside the part
region the prompts selected, less ignored areas and normal surfaces, the regions above
the threshold are defects: each outlined by the segment that best covers it where one
does (so FastSAM still gives defects their shape), else by its own contour. The
image's score is the map's largest value there. A taught recipe that takes its defects
from segments alone (``defects.detect: segments``) is still scored, for sorting and
reports.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from inspector.engine.backbone import CELL_CENTRE, STRIDE, backbone
from inspector.engine.image import Picture
from inspector.engine.normal import MAP_UPSAMPLING, anomaly_values, score_of, searched_cells
from inspector.engine.reference import PreparedReference, confident
from inspector.engine.rules import ANOMALY_LABEL, NOT_REGISTERED_LABEL, Candidate
from inspector.engine.stages import ImageWork, Stage, StageContext
from inspector.engine.types import ERROR, FAIL, PASS, AnomalyMap, InspectionResult
from inspector.recipe.model import Recipe

MAX_VIEW_SIDE = 4096  # the view's longer side at most (a longer strip is shown smaller)
_SEGMENT_FIT = 0.3  # a segment outlines a region when their IoU reaches this
_SEGMENT_SIZE = 4.0  # ... and it is at most this many times the region's size
_CELL = STRIDE // MAP_UPSAMPLING  # view pixels per anomaly-map cell
# The view pixel at the centre of map cell j: feature cell c is centred on view pixel
# STRIDE * c + CELL_CENTRE (measured), and upsampling puts map cell j on c = j / U - 1/4.
_CENTRE = CELL_CENTRE - (STRIDE - _CELL) / 2
_MAP_TO_VIEW = np.array([[_CELL, 0.0, _CENTRE], [0.0, _CELL, _CENTRE], [0.0, 0.0, 1.0]])


def view_geometry(reference: PreparedReference, resolution: int) -> tuple[tuple[int, int], np.ndarray]:
    """The view's (width, height), multiples of the feature stride, and the 3x3 map from
    reference pixels to view pixels."""
    x1, y1, x2, y2 = reference.window_or_image
    w, h = x2 - x1, y2 - y1
    scale = min(resolution / min(w, h), MAX_VIEW_SIDE / max(w, h))
    size = (max(STRIDE, round(w * scale / STRIDE) * STRIDE), max(STRIDE, round(h * scale / STRIDE) * STRIDE))
    to_view = np.array([[size[0] / w, 0.0, -x1 * size[0] / w], [0.0, size[1] / h, -y1 * size[1] / h], [0, 0, 1.0]])
    return size, to_view


def anomaly_view(
    picture: Picture, warp: np.ndarray | None, reference: PreparedReference, resolution: int
) -> tuple[np.ndarray, np.ndarray]:
    """What the feature network is shown of an image: the reference's window of it, as
    registered by ``warp`` (its pixels at hand to the reference's; None: the same pixels),
    at ``resolution``. Returns the view and the 3x3 map from reference to view pixels.

    Shrinking averages pixels (area interpolation): sampled, a fine texture would alias
    into patterns the good parts never showed.
    """
    size, to_view = view_geometry(reference, resolution)
    matrix = to_view if warp is None else to_view @ warp
    pixels = picture.pixels
    if not matrix[0, 1] and not matrix[1, 0] and not matrix[2, :2].any():  # a scale and a shift: cut and resize
        (x0, y0), (x1, y1) = _pixels_of(matrix, (0, 0)), _pixels_of(matrix, size)
        h, w = pixels.shape[:2]
        if 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h:
            return cv2.resize(pixels[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA), to_view
    scale = math.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    if scale < 1.0:  # shrink to about the view's scale first, then register at about 1:1
        shrunk = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ratio = np.diag([shrunk.shape[1] / pixels.shape[1], shrunk.shape[0] / pixels.shape[0], 1.0])
        pixels, matrix = shrunk, matrix @ np.linalg.inv(ratio)
    view = cv2.warpPerspective(pixels, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return view, to_view


def _pixels_of(matrix: np.ndarray, corner: tuple[int, int]) -> tuple[int, int]:
    """The pixel corner of the image that a view corner comes from (a scale and a shift)."""
    x = (corner[0] - matrix[0, 2]) / matrix[0, 0]
    y = (corner[1] - matrix[1, 2]) / matrix[1, 1]
    return round(x), round(y)


def _on_grid(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0


def searched_region(work: ImageWork, border: float = 0.0) -> np.ndarray:
    """Where defects are looked for, on the segmentation's grid: the part region, less
    ignored areas and normal surfaces, and less a band of ``border`` image pixels along
    the part region's outline (and the frame's edge)."""
    regions, segmentation = work.regions, work.segmentation
    where = regions.part_region & ~regions.ignore_region
    for k in regions.normal_indices:
        where &= ~segmentation.masks[k]
    cells = int(np.ceil(border * segmentation.scale))
    if cells > 0:
        kernel = np.ones((2 * cells + 1, 2 * cells + 1), np.uint8)
        inside = cv2.erode(regions.part_region.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        where &= inside > 0
    return where


def threshold_of(recipe, normal) -> float:
    """The score above which a region is a defect: the recipe's own, else the taught one."""
    return recipe.anomaly.threshold if recipe.anomaly.threshold is not None else normal.threshold


def _confidence(peak: float, threshold: float, spread: float) -> float:
    """A region's peak as a confidence: one half at the threshold, near one a few
    spreads of the good parts' scores above it."""
    return float(1.0 / (1.0 + math.exp(-(peak - threshold) / max(spread, 1e-6))))


def _outlining_segment(work: ImageWork, segmentation, region: np.ndarray, taken: set[int]) -> int | None:
    """The segment of ``segmentation`` (the image's confident segments) that best covers a
    region (on the segmentation's grid), if one does."""
    if len(segmentation) == 0 or not region.any():
        return None
    excluded = set(work.regions.part_indices | work.regions.normal_indices) | taken
    masks = segmentation.masks
    area = float(region.sum())
    inter = (masks & region).reshape(len(masks), -1).sum(1).astype(np.float64)
    sizes = masks.reshape(len(masks), -1).sum(1).astype(np.float64)
    iou = inter / np.maximum(sizes + area - inter, 1.0)
    iou[sizes > _SEGMENT_SIZE * area] = 0.0
    iou[[i for i in excluded if i < len(iou)]] = 0.0  # rule candidates may lie past the confident head
    best = int(np.argmax(iou))
    return best if iou[best] >= _SEGMENT_FIT else None


def _own_patch(cells: np.ndarray, box, from_view: np.ndarray) -> tuple[tuple[int, int], np.ndarray]:
    """A region's own mask in reference pixels, from its cells on the map grid."""
    c0, r0, cw, rh = box
    sx, sy = from_view[0, 0], from_view[1, 1]  # reference pixels per view pixel
    edge = _CENTRE - _CELL / 2 + 0.5  # a map cell's first view pixel, past its index times _CELL
    x0 = int(np.floor(from_view[0, 2] + (c0 * _CELL + edge) * sx))
    y0 = int(np.floor(from_view[1, 2] + (r0 * _CELL + edge) * sy))
    size = (max(1, round(cw * _CELL * sx)), max(1, round(rh * _CELL * sy)))
    crop = cells[r0 : r0 + rh, c0 : c0 + cw].astype(np.float32)
    mask = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR) > 0.5
    return (x0, y0), mask if mask.any() else np.ones(size[::-1], bool)


def run(work: ImageWork, context: StageContext) -> None:
    recipe, reference, normal = context.recipe, context.reference, context.normal
    registration = work.registration
    view, to_view = anomaly_view(work.picture, registration.warp, reference, normal.resolution)
    features = backbone().features(view)
    searched = searched_region(work, recipe.anomaly.border)
    values, on_map = anomaly_values(normal.distances(features, searched_cells(searched, features.grid[::-1])), searched)
    threshold = threshold_of(recipe, normal)
    from_view = np.linalg.inv(to_view)
    to_image = from_view @ _MAP_TO_VIEW
    if registration.matrix is not None:
        to_image = np.linalg.inv(registration.matrix) @ to_image
    # Image pixels per map cell: the cell's size in reference pixels, through the registration.
    cell_area = (_CELL * from_view[0, 0]) * (_CELL * from_view[1, 1])
    if registration.matrix is not None:
        cell_area /= abs(np.linalg.det(registration.matrix[:2, :2]))
    floor = float(np.mean(normal.calibration.scores))
    work.anomaly_map = AnomalyMap(values, to_image, threshold, floor, cell_area)
    work.anomaly_score = score_of(values, on_map)
    if not recipe.uses_anomaly:
        return  # scored only: the recipe takes its defects from segments
    taken = {c.index for c in work.candidates if not c.missing}
    rules, spread = recipe.defects, normal.calibration.spread
    grid = work.segmentation.masks.shape[1:]
    segments = confident(work.segmentation, recipe)
    for region in work.anomaly_map.regions(threshold, rules.min_area, rules.max_area):
        score = _confidence(region.peak, threshold, spread)
        segment = _outlining_segment(work, segments, _on_grid(region.cells, grid), taken)
        if segment is not None:
            taken.add(segment)
            work.candidates.append(Candidate(segment, ANOMALY_LABEL, score, region.area))
        else:
            patch = _own_patch(region.cells, region.box, from_view)
            work.candidates.append(Candidate(-1, ANOMALY_LABEL, score, region.area, patch=patch))


def verdict_at(result: InspectionResult, threshold: float, recipe: Recipe) -> str:
    """The verdict an inspected image would get at another anomaly threshold, from what its
    result kept (findings and anomaly map): no network run. As the stages decide it,
    a defect outlined by a segment at the new threshold counted by its region; a recipe
    with text classes keeps its verdicts (CLIP would have to look again)."""
    if result.verdict == ERROR or result.anomaly is None or not recipe.uses_anomaly or recipe.defects.uses_clip:
        return result.verdict  # text classes rename or drop regions: only CLIP could say
    kept = sum(f.label != ANOMALY_LABEL for f in result.findings)
    rules = recipe.defects
    found = kept + len(result.anomaly.regions(threshold, rules.min_area, rules.max_area))
    unchecked = any(f.label == NOT_REGISTERED_LABEL for f in result.findings)
    return FAIL if found > rules.allowed or unchecked else PASS


STAGE = Stage("anomaly", run, timing="anomaly", wanted=lambda recipe: recipe.taught)
