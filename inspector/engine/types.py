"""Values that leave the engine: frozen, numpy only, no torch.

A :class:`Segmentation` holds every instance FastSAM found in one image at prototype
resolution (a quarter of the network input). Prompts are applied there; a mask at the
image's own resolution is built only for the instances that are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class ModelIdentity:
    """Which weights produced a result: a display name and the file's SHA-256."""

    name: str
    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Segmentation:
    """Every instance segmented in one image.

    Attributes:
        image_size: (width, height) of the image that was segmented.
        scale: low-resolution pixels per image pixel (the same on both axes).
        boxes: (N, 4) float32 x1, y1, x2, y2 in image pixels.
        scores: (N,) float32 confidence.
        masks: (N, h, w) bool at prototype resolution, covering the segmented window
            exactly (the whole image unless a window was placed with :meth:`placed`).
        probabilities: (N, h, w) float16 mask probabilities behind ``masks``, used to
            build smooth full-resolution masks.
        timings: milliseconds per stage (preprocess, inference, postprocess).
        origin: image pixel (x, y) of the segmented window's top-left corner.
    """

    image_size: tuple[int, int]
    scale: float
    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    probabilities: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    origin: tuple[float, float] = (0.0, 0.0)

    def __len__(self) -> int:
        return len(self.boxes)

    def ranked(self) -> Segmentation:
        """The same instances, most confident first (as NMS returns them already)."""
        order = np.argsort(-self.scores, kind="stable")
        if np.array_equal(order, np.arange(len(order))):
            return self
        return self._take(order)

    def head(self, count: int) -> Segmentation:
        """The first ``count`` instances; on a ranked segmentation, the most confident."""
        return self if count >= len(self) else self._take(np.arange(count))

    def _take(self, indices: np.ndarray) -> Segmentation:
        return replace(
            self,
            boxes=self.boxes[indices],
            scores=self.scores[indices],
            masks=self.masks[indices],
            probabilities=self.probabilities[indices],
        )

    @property
    def lowres_size(self) -> tuple[int, int]:
        """(width, height) of the low-resolution masks."""
        return self.masks.shape[2], self.masks.shape[1]

    def placed(self, origin: tuple[float, float], image_size: tuple[int, int]) -> Segmentation:
        """This segmentation of a window, placed at ``origin`` in an image of ``image_size``."""
        ox, oy = origin
        return replace(self, origin=(float(ox), float(oy)), image_size=image_size, boxes=self.boxes + [ox, oy, ox, oy])

    def to_lowres(self, xy: np.ndarray) -> np.ndarray:
        """Map image pixel coordinates (points (K, 2) or boxes (M, 4)) onto the masks."""
        xy = np.asarray(xy, np.float64)
        return (xy - np.tile(self.origin, xy.shape[-1] // 2)) * self.scale

    def lowres_points(self, points: np.ndarray) -> np.ndarray:
        """Image points mapped onto mask pixels, clipped inside the low-resolution grid."""
        w, h = self.lowres_size
        pts = self.to_lowres(np.asarray(points, np.float64).reshape(-1, 2))
        return np.clip(pts, 0, [w - 1e-3, h - 1e-3])

    def lowres_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Image boxes mapped onto mask pixels, kept at least one mask pixel wide."""
        w, h = self.lowres_size
        b = self.to_lowres(np.asarray(boxes, np.float64).reshape(-1, 4))
        b[:, [0, 1]] = np.floor(b[:, [0, 1]])
        b[:, [2, 3]] = np.maximum(np.ceil(b[:, [2, 3]]), b[:, [0, 1]] + 1)
        return np.clip(b, 0, [w, h, w, h])

    def mask_in_box(self, index: int) -> tuple[tuple[int, int], np.ndarray]:
        """One instance at image resolution, inside its box only: ((x0, y0), bool patch).

        The cost follows the instance's size, not the image's.
        """
        width, height = self.image_size
        x1, y1, x2, y2 = self.boxes[index]
        x0, y0 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        x3, y3 = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        if x3 <= x0 or y3 <= y0:
            return (x0, y0), np.zeros((0, 0), bool)
        # Pixel centres of the box, expressed in low-resolution pixel coordinates.
        ox, oy = self.origin
        xs = ((np.arange(x0, x3) + 0.5 - ox) * self.scale - 0.5).astype(np.float32)
        ys = ((np.arange(y0, y3) + 0.5 - oy) * self.scale - 0.5).astype(np.float32)
        map_x, map_y = np.meshgrid(xs, ys)
        prob = self.probabilities[index].astype(np.float32)
        patch = cv2.remap(prob, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return (x0, y0), patch > 0.5

    def full_mask(self, index: int) -> np.ndarray:
        """The (H, W) bool mask of one instance at image resolution."""
        width, height = self.image_size
        out = np.zeros((height, width), bool)
        (x0, y0), patch = self.mask_in_box(index)
        out[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
        return out

    def full_region(self, selection) -> np.ndarray:
        """A :class:`~inspector.engine.prompts.Selection` rebuilt at image resolution."""
        width, height = self.image_size
        return selection.replay(self.full_mask, (height, width))


Verdict = str  # "PASS", "FAIL" or "ERROR"
PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"


@dataclass(frozen=True)
class Finding:
    """One reported defect, in the pixels of the inspected image.

    Attributes:
        label: "defect", "missing feature", "difference" (a visible change no segment
            explains), or a text class.
        score: confidence in [0, 1].
        area: pixels.
        box: (x1, y1, x2, y2).
        outline: (K, 2) float32 polygon.
    """

    label: str
    score: float
    area: float
    box: tuple[float, float, float, float]
    outline: np.ndarray

    def scaled(self, sx: float, sy: float) -> Finding:
        """The same finding on the image resampled ``sx`` x ``sy`` times as fine (pixel
        centres kept in place, as a reduced decode does; area in the new pixels)."""

        def x(v):
            return (v + 0.5) * sx - 0.5

        def y(v):
            return (v + 0.5) * sy - 0.5

        x1, y1, x2, y2 = self.box
        outline = np.stack([x(self.outline[:, 0]), y(self.outline[:, 1])], axis=1).astype(np.float32)
        return replace(self, area=self.area * sx * sy, box=(x(x1), y(y1), x(x2), y(y2)), outline=outline)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "area": round(self.area, 1),
            "box": [round(v, 1) for v in self.box],
            "outline": np.round(self.outline, 1).tolist(),
        }


@dataclass(frozen=True)
class AnomalyRegion:
    """A connected region of an anomaly map that reaches the threshold.

    ``cells`` is its (h, w) bool mask on the map's grid, ``box`` its (x, y, width,
    height) there, ``peak`` its highest score and ``area`` its size in image pixels.
    """

    cells: np.ndarray
    box: tuple[int, int, int, int]
    peak: float
    area: float


@dataclass(frozen=True)
class AnomalyMap:
    """How unusual each place of an inspected image looks to a taught recipe.

    ``values`` is a (h, w) float32 grid of anomaly scores (the same units as the
    threshold; 0 where nothing was looked at); ``to_image`` the 3x3 map from grid
    coordinates (cell centres at integers) to the inspected image's pixels;
    ``threshold`` the one the image was judged at; a region reaching a threshold
    extends while it stays above ``floor`` (what a typical good part reaches at its
    most unusual place); ``cell_area`` is a cell's size in image pixels.
    """

    values: np.ndarray
    to_image: np.ndarray
    threshold: float
    floor: float = 0.0
    cell_area: float = 1.0

    def in_image(self, image_size: tuple[int, int]) -> np.ndarray:
        """The map at the resolution of an image of (width, height) ``image_size``."""
        return cv2.warpPerspective(
            self.values,
            self.to_image,
            tuple(int(v) for v in image_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )

    def regions(self, threshold: float, min_area: float = 0.0, max_area: float = float("inf")) -> list[AnomalyRegion]:
        """The regions that reach ``threshold``, each grown while above the floor (a
        crack is reported whole, not only its worst spot), within the area limits."""
        if float(self.values.max(initial=0.0)) <= threshold:
            return []
        floor = min(threshold, self.floor)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            (self.values > floor).astype(np.uint8), connectivity=8
        )
        peaks = np.zeros(count)
        np.maximum.at(peaks, labels.reshape(-1), self.values.reshape(-1))
        found = []
        for k in range(1, count):
            area = float(stats[k, cv2.CC_STAT_AREA]) * self.cell_area
            if peaks[k] > threshold and min_area <= area <= max_area:
                box = tuple(int(v) for v in stats[k, :4])
                found.append(AnomalyRegion(labels == k, box, float(peaks[k]), area))
        return found


@dataclass(frozen=True)
class InspectionResult:
    """The outcome of one image: verdict, defects, timings and what produced it.

    ``registration`` says how the image was registered to the reference (see
    ``engine/stages/register.py``); ``anomaly_score`` is a taught recipe's score of the
    image (its anomaly map's largest value on the part), ``anomaly`` the map itself.
    """

    verdict: Verdict
    findings: tuple[Finding, ...]
    image_size: tuple[int, int] | None
    timings: dict[str, float]
    recipe_hash: str
    model: ModelIdentity
    error: str | None = None
    registration: str | None = None
    anomaly_score: float | None = None
    anomaly: AnomalyMap | None = field(default=None, compare=False, repr=False)

    def with_timing(self, stage: str, ms: float) -> InspectionResult:
        """The same result with one more stage timed before the others (e.g. reading)."""
        return replace(self, timings={stage: ms, **self.timings})

    def findings_at(self, image_size: tuple[int, int]) -> tuple[Finding, ...]:
        """The findings on the same image at another (width, height), e.g. decoded smaller."""
        if self.image_size is None or tuple(image_size) == tuple(self.image_size):
            return self.findings
        sx, sy = image_size[0] / self.image_size[0], image_size[1] / self.image_size[1]
        return tuple(f.scaled(sx, sy) for f in self.findings)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings.values()))

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "error": self.error,
            "defects": [f.to_dict() for f in self.findings],
            "image_size": list(self.image_size) if self.image_size else None,
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
            "recipe_sha256": self.recipe_hash,
            "model": self.model.to_dict(),
            "registration": self.registration,
            "anomaly_score": None if self.anomaly_score is None else round(self.anomaly_score, 4),
        }
