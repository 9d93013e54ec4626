"""Normal appearance learnt from good parts: a PatchCore memory bank (Roth et al. 2022).

Teaching collects the backbone's patch features (``engine/backbone.py``) of 1 to 500
good images, inside the part region, and keeps a coreset of them: the patches chosen
one by one, each the farthest from those chosen so far (greedy k-center), so that every
taught patch has a close neighbour in the bank however rare its look. An inspected
patch's anomaly is its distance to the nearest patch in the bank; the map is smoothed
and an image's score is its largest value inside the part region.

The threshold comes from the good images alone: each taught image is scored against the
bank without its own patches (leave one out), as a new good part would be, and the
threshold is the upper prediction bound of a good part's score for the expected false-
reject rate asked for, the scores taken as normally distributed (Student's t, for the
few images usually taught), or the highest of the scores where that is lower (see
:func:`calibrate`). With one image, its patches are scored against the bank without
their own neighbourhood instead.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from inspector.engine.backbone import DIMENSIONS, FeatureMap
from inspector.errors import EngineError

# Patches kept in the bank. The nearest-neighbour search costs in proportion: with all 31
# good cookies taught (23,800 patches) a bank of 16,384 took 121 ms an image on one core,
# 4,096 took 14 ms, with the same image and pixel AUROC (1.000, 0.982); on the demo
# label, 20 parts taught, 4,096 against all 9,860 gave the same AUROC (0.98).
MAX_BANK = 4096
MAX_CANDIDATES = 120_000  # patches collected before the coreset is chosen (memory bound)
CALIBRATION_IMAGES = 60  # most images scored leave-one-out for the threshold
_PROJECTION = 32  # dimensions the coreset's distances are measured in (a random projection)
_NEIGHBOURHOOD = 2  # one taught image: a patch is scored without the bank's patches this near (grid cells)
SMOOTHING = 1.0  # Gaussian sigma of the anomaly map, in map cells (a map cell is half a patch)
MAP_UPSAMPLING = 2  # map cells per feature cell on each axis


@dataclass(frozen=True)
class Calibration:
    """How the threshold was set: the rule, and the good images' scores behind it.

    Attributes:
        scores: each taught image's leave-one-out score.
        false_rejects: the expected share of good parts scoring above the threshold
            (for the highest-score rule, its upper bound 1 / (n + 1)).
        threshold: the score above which a region is a defect.
        spread: the scores' standard deviation (the scale of a defect's confidence).
        rule: the rule in words, with its figures.
    """

    scores: tuple[float, ...]
    false_rejects: float
    threshold: float
    spread: float
    rule: str


def _student_t(p: float, dof: int) -> float:
    """The one-sided ``1 - p`` quantile of Student's t with ``dof`` degrees of freedom
    (bisection on the regularised incomplete beta function: no SciPy needed)."""

    def tail(t: float) -> float:  # P(T > t) for t >= 0
        x = dof / (dof + t * t)
        return 0.5 * _incomplete_beta(dof / 2.0, 0.5, x)

    low, high = 0.0, 1.0
    while tail(high) > p:
        high *= 2.0
    for _ in range(80):
        mid = (low + high) / 2.0
        low, high = (mid, high) if tail(mid) > p else (low, mid)
    return (low + high) / 2.0


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (continued fraction, Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    c, d, f = 1.0, 0.0, 1.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = (m * (b - m) * x) / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        else:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > 1e-30 else 1e-30)
        c = 1.0 + numerator / (c if abs(c) > 1e-30 else 1e-30)
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0)


def calibrate(scores: list[float], false_rejects: float) -> Calibration:
    """The threshold for good parts' leave-one-out ``scores`` at the expected false-reject
    rate ``false_rejects``.

    With two or more scores: the upper ``1 - false_rejects`` prediction bound of a new
    good part's score, ``mean + t * sd * sqrt(1 + 1/n)``, taking scores as normally
    distributed; or the highest of the scores where that is lower. From a few images the
    bound is wide (t is 4.5 for 4 images at 1 %), while a new good part, exchangeable
    with the taught ones and scored against one image more, exceeds the highest of n
    leave-one-out scores with probability at most 1 / (n + 1): measured on the cookies
    with 4 images, the bound alone kept 32 % of defective parts' recall on average over
    20 random choices of images, the lower of the two 97 % (and 4.6 % false rejects).
    With one image no spread can be measured: its score times 1.1, no rate stated.
    """
    if not scores:
        raise EngineError("no good image could be scored to set the threshold")
    values = np.asarray(scores, np.float64)
    if not np.isfinite(values).all():
        raise EngineError("a good image's held-out score is not a number; teach again with other images")
    n = len(values)
    mean = float(values.mean())
    kept = tuple(float(s) for s in values)
    if n == 1:
        rule = f"one good image: its score without its own neighbourhood, {mean:.3g}, times 1.1 (no rate can be stated)"
        return Calibration(kept, false_rejects, 1.1 * mean, 0.05 * mean, rule)
    spread = max(float(values.std(ddof=1)), 0.01 * mean)  # identical images would give no spread at all
    t = _student_t(false_rejects, n - 1)
    bound = mean + t * spread * math.sqrt(1.0 + 1.0 / n)
    highest = float(values.max())
    if bound <= highest:
        rule = (
            f"upper {100 * (1 - false_rejects):g} % prediction bound of a good part's score from {n} leave-one-out "
            f"scores (mean {mean:.3g}, sd {spread:.3g}, t {t:.3g}): a good part scores above it with probability "
            f"{100 * false_rejects:g} % if the scores are normally distributed"
        )
        return Calibration(kept, false_rejects, float(bound), spread, rule)
    rule = (
        f"the highest of {n} leave-one-out scores, {highest:.4g} (their {100 * (1 - false_rejects):g} % prediction "
        f"bound, {bound:.4g}, is wider with so few images): a good part scores above it with probability at most "
        f"{100 / (n + 1):.2g} %; teach more good images for a threshold at {100 * false_rejects:g} %"
    )
    return Calibration(kept, 1.0 / (n + 1), highest, spread, rule)


def smooth(distances: np.ndarray) -> np.ndarray:
    """A feature grid's nearest-neighbour distances as the anomaly map: bilinear onto a
    grid ``MAP_UPSAMPLING`` times finer, then a Gaussian blur."""
    h, w = distances.shape
    fine = cv2.resize(distances, (w * MAP_UPSAMPLING, h * MAP_UPSAMPLING), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(fine, (0, 0), SMOOTHING)


def _nearest(queries: np.ndarray, bank: np.ndarray, bank_norms: np.ndarray, exclude=None) -> np.ndarray:
    """Euclidean distance of each query to its nearest bank row (``exclude(rows, cols)``
    gives a bool mask of pairs not to count), in blocks that bound the memory."""
    import torch

    out = np.empty(len(queries), np.float32)
    bank_t = torch.from_numpy(bank)
    norms_t = torch.from_numpy(bank_norms)
    for start in range(0, len(queries), 2048):
        q = torch.from_numpy(queries[start : start + 2048])
        d2 = (q * q).sum(1, keepdim=True) + norms_t[None, :] - 2.0 * (q @ bank_t.T)
        if exclude is not None:
            d2[torch.from_numpy(exclude(start, start + len(q)))] = float("inf")
        out[start : start + len(q)] = d2.min(dim=1).values.clamp_(min=0).sqrt_().numpy()
    return out


@dataclass(frozen=True)
class NormalModel:
    """What good parts look like, learnt by :class:`Teacher`.

    Attributes:
        bank: (M, D) float32 patch features of good parts.
        resolution: pixels on the shorter side of what the backbone is shown.
        calibration: the threshold and how it was set.
        images: how many good images were taught.
    """

    bank: np.ndarray
    resolution: int
    calibration: Calibration
    images: int
    _norms: np.ndarray = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.bank.ndim != 2 or self.bank.shape[1] != DIMENSIONS or len(self.bank) == 0:
            raise EngineError(f"a normal model needs (M, {DIMENSIONS}) patch features, got {self.bank.shape}")
        object.__setattr__(self, "_norms", (self.bank.astype(np.float32) ** 2).sum(1))

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def distances(self, features: FeatureMap, where: np.ndarray | None = None) -> np.ndarray:
        """(h, w) nearest-neighbour distance of each patch (0 outside ``where``, a bool
        mask on the feature grid: patches nobody looks at are not searched)."""
        h, w = features.features.shape[:2]
        flat = features.features.reshape(-1, features.features.shape[2])
        out = np.zeros(h * w, np.float32)
        index = np.flatnonzero(where.reshape(-1)) if where is not None else np.arange(h * w)
        if len(index):
            out[index] = _nearest(np.ascontiguousarray(flat[index]), self.bank, self._norms)
        return out.reshape(h, w)


class Teacher:
    """Learns a :class:`NormalModel` from good images, one at a time, in bounded memory.

    Args:
        resolution: pixels on the shorter side of what the backbone is shown.
        expected_images: how many images will be added (to share ``MAX_CANDIDATES``
            out fairly); more may come, at a sample of their patches.
        seed: the random choices (patch samples, projection) are repeatable.
    """

    def __init__(self, *, resolution: int, expected_images: int, seed: int = 0) -> None:
        self.resolution = resolution
        self._per_image = max(64, MAX_CANDIDATES // max(1, expected_images))
        self._rng = np.random.default_rng(seed)
        self._candidates: list[np.ndarray] = []  # per image: (k, D) float32
        self._cells: list[np.ndarray] = []  # per image: where on the grid each candidate lies
        # Of the first CALIBRATION_IMAGES: (features in half precision, searched region)
        self._calibration: list[tuple[np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()

    @property
    def images(self) -> int:
        return len(self._candidates)

    def add(self, features: FeatureMap, searched: np.ndarray) -> None:
        """One good image's patch features, and where defects will be searched on such an
        image (a bool mask on any grid over the same view: the part region less ignored
        areas and normal surfaces). The patches taught are those the search looks at."""
        flat = features.features.reshape(-1, features.features.shape[2])
        index = np.flatnonzero(searched_cells(searched, features.features.shape[:2]).reshape(-1))
        if not searched.any() or len(index) == 0:
            raise EngineError("the part region holds no patch of this image")
        with self._lock:
            if len(index) > self._per_image:
                index = np.sort(self._rng.choice(index, self._per_image, replace=False))
            self._candidates.append(np.ascontiguousarray(flat[index], np.float32))
            self._cells.append(index)
            if len(self._calibration) < CALIBRATION_IMAGES:
                self._calibration.append((features.features.astype(np.float16), searched))

    def finish(self, *, false_rejects: float) -> NormalModel:
        """The bank (a coreset of every image's patches) and its calibrated threshold."""
        if not self._candidates:
            raise EngineError("no good image was taught")
        owners = np.concatenate([np.full(len(c), k, np.int32) for k, c in enumerate(self._candidates)])
        cells = np.concatenate(self._cells)
        patches = np.concatenate(self._candidates)
        chosen = coreset(patches, MAX_BANK, self._rng)
        bank = patches[chosen]
        norms = (bank**2).sum(1)
        scores = [
            self._held_out_score(k, bank, norms, owners[chosen], cells[chosen]) for k in range(len(self._calibration))
        ]
        # Distances a hundredth of a patch's own size are rounding: the images are one.
        if np.mean(scores) < 0.01 * float(np.median(np.linalg.norm(bank, axis=1))):
            raise EngineError(
                "the good images are copies of one image (each scores 0 without itself); teach different parts"
            )
        return NormalModel(bank, self.resolution, calibrate(scores, false_rejects), self.images)

    def _held_out_score(
        self, k: int, bank: np.ndarray, norms: np.ndarray, owners: np.ndarray, cells: np.ndarray
    ) -> float:
        """Image ``k``'s score, as inspection would score it, against the bank without its
        own patches (or, the only image taught, without those near each of its own)."""
        features, searched = self._calibration[k]
        h, w = features.shape[:2]
        looked_at = np.flatnonzero(searched_cells(searched, (h, w)).reshape(-1))
        queries = np.ascontiguousarray(features.reshape(-1, features.shape[2])[looked_at], np.float32)
        if self.images > 1:
            others = owners != k
            distances = _nearest(queries, np.ascontiguousarray(bank[others]), norms[others])
        else:
            qy, qx = np.divmod(looked_at, w)
            by, bx = np.divmod(cells, w)

            def near(start: int, stop: int) -> np.ndarray:
                close_y = np.abs(qy[start:stop, None] - by[None, :]) <= _NEIGHBOURHOOD
                return close_y & (np.abs(qx[start:stop, None] - bx[None, :]) <= _NEIGHBOURHOOD)

            distances = _nearest(queries, bank, norms, exclude=near)
            # A patch with every bank patch in its own neighbourhood (a part of a few
            # patches) has nothing to be held against: it scores as the highest that has.
            finite = np.isfinite(distances)
            distances[~finite] = distances[finite].max() if finite.any() else 0.0
        grid = np.zeros(h * w, np.float32)
        grid[looked_at] = distances
        values, on_map = anomaly_values(grid.reshape(h, w), searched)
        return score_of(values, on_map)


def searched_cells(searched: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The feature cells a search of ``searched`` (a bool mask on any grid over the view)
    looks at: the region on the (h, w) feature grid, grown by a cell, since the smoothed
    map reaches that far."""
    cells = cv2.resize(searched.astype(np.uint8), (grid[1], grid[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.dilate(cells, np.ones((3, 3), np.uint8)) > 0


def anomaly_values(distances: np.ndarray, searched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The anomaly map of a feature grid's nearest-neighbour distances, 0 outside the
    searched region, and that region on the map's grid. Teaching and inspection both
    score this way, so that the threshold is set on what it is compared with."""
    values = smooth(distances)
    on_map = cv2.resize(searched.astype(np.uint8), values.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    values[~on_map] = 0.0
    return values, on_map


def score_of(values: np.ndarray, on_map: np.ndarray) -> float:
    """An image's score: its anomaly map's largest value in the searched region."""
    return float(values[on_map].max()) if on_map.any() else 0.0


def coreset(patches: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``size`` rows of ``patches`` chosen greedily, each the farthest
    from those chosen before (k-center), measured in a random projection to a few
    dimensions (Johnson-Lindenstrauss: distances are kept roughly, at a fraction of the
    cost). All rows when there are no more than ``size``."""
    import torch

    if len(patches) <= size:
        return np.arange(len(patches))
    projection = rng.standard_normal((patches.shape[1], _PROJECTION)).astype(np.float32) / math.sqrt(_PROJECTION)
    points = torch.from_numpy(patches @ projection)
    norms = (points * points).sum(1)
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(len(patches)))
    nearest = torch.full((len(patches),), float("inf"))
    with torch.inference_mode():
        for k in range(size):
            if k:
                chosen[k] = int(torch.argmax(nearest))
            p = points[chosen[k]]
            torch.minimum(nearest, norms - 2.0 * (points @ p) + (p * p).sum(), out=nearest)
    return chosen
