"""How well a recipe does on a labelled folder: ``inspector evaluate``.

The folder is laid out as MVTec AD is: ``test/good/`` and ``test/<defect kind>/``
images, ``ground_truth/<defect kind>/<stem>_mask.png`` masks of the defects (0 / 255).
Every test image is inspected as ``inspector run`` would (nothing is stored) and
measured:

- image AUROC: how well the image's score (a taught recipe's anomaly score, otherwise
  its most confident defect) ranks defective parts above good ones, whatever the
  threshold;
- recall and false-reject rate at the recipe's own threshold (its verdicts; an ERROR
  counts as a reject, as on the line);
- pixel AUROC: the same ranking over pixels, against the masks (the anomaly map; for an
  untaught recipe the reported outlines, filled with their confidence);
- per-region overlap: of each defect region in the masks, the share that reported
  outlines cover (its mean), and the share of regions touched at all;
- time per image.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from inspector.engine.image import read_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.types import ERROR, FAIL, InspectionResult
from inspector.errors import InspectorError, SourceError
from inspector.sources.files import IMAGE_SUFFIXES

PIXELS_PER_IMAGE = 100_000  # pixels sampled from each image for the pixel AUROC
GOOD = "good"


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    kind: str  # "good" or the defect kind (its folder's name)
    mask: Path | None  # the defects' mask, for a defective image that has one

    @property
    def defective(self) -> bool:
        return self.kind != GOOD


def labelled_images(folder: str | os.PathLike) -> list[LabelledImage]:
    """The test images of an MVTec AD style folder, good ones first.

    Raises:
        SourceError: the folder is not laid out so, or holds no good or no defective image.
    """
    root = Path(folder)
    test = root / "test"
    if not test.is_dir():
        raise SourceError(
            f"{root}: not a labelled folder; expected test/good/, test/<defect kind>/ and "
            "ground_truth/<defect kind>/<image>_mask.png (the MVTec AD layout)"
        )
    images = []
    for kind_dir in sorted((p for p in test.iterdir() if p.is_dir()), key=lambda p: (p.name != GOOD, p.name)):
        for path in sorted(kind_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            mask = None
            if kind_dir.name != GOOD:
                for name in (f"{path.stem}_mask.png", f"{path.stem}.png"):
                    candidate = root / "ground_truth" / kind_dir.name / name
                    if candidate.is_file():
                        mask = candidate
                        break
            images.append(LabelledImage(path, kind_dir.name, mask))
    kinds = {image.defective for image in images}
    if kinds != {False, True}:
        missing = "good" if True in kinds else "defective"
        raise SourceError(f"{test}: holds no {missing} images; both are needed to measure a recipe")
    return images


def labelled_folder(folder: str | os.PathLike) -> list[LabelledImage] | None:
    """A folder's images with their labels where it is labelled: an MVTec AD style folder
    (see :func:`labelled_images`), or one whose sub-folders are ``good/`` and defect
    kinds (its ``test/`` folder, say); None for a folder of images without labels."""
    root = Path(folder)
    try:
        if (root / "test").is_dir():
            return labelled_images(root)
        if (root / GOOD).is_dir() and any(p.is_dir() and p.name != GOOD for p in root.iterdir()):
            images = labelled_images(root.parent) if root.name == "test" else None
            if images is None:
                images = [
                    LabelledImage(path, kind.name, None)
                    for kind in sorted(p for p in root.iterdir() if p.is_dir())
                    for path in sorted(kind.iterdir())
                    if path.suffix.lower() in IMAGE_SUFFIXES
                ]
            return images
    except (OSError, SourceError):
        return None
    return None


def auroc(scores, labels) -> float | None:
    """Area under the ROC curve of ``scores`` for bool ``labels`` (ties count a half);
    None when only one class is present."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    # Each score's rank, ties given the average of the ranks they share.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


@dataclass(frozen=True)
class ImageOutcome:
    name: str
    kind: str
    verdict: str
    score: float
    ms: float
    error: str | None = None
    region_overlaps: tuple[float, ...] = ()  # per defect region of its mask


@dataclass
class Evaluation:
    """The figures ``inspector evaluate`` reports."""

    folder: str
    threshold: float | None
    images: list[ImageOutcome] = field(default_factory=list)
    pixel_auroc: float | None = None
    seconds: float = 0.0

    def _of(self, defective: bool) -> list[ImageOutcome]:
        return [i for i in self.images if (i.kind != GOOD) == defective]

    @property
    def image_auroc(self) -> float | None:
        scored = [i for i in self.images if i.verdict != ERROR]
        return auroc([i.score for i in scored], [i.kind != GOOD for i in scored])

    @property
    def recall(self) -> float:
        defective = self._of(True)
        return sum(i.verdict in (FAIL, ERROR) for i in defective) / len(defective)

    @property
    def false_reject_rate(self) -> float:
        good = self._of(False)
        return sum(i.verdict in (FAIL, ERROR) for i in good) / len(good)

    @property
    def regions(self) -> list[float]:
        return [overlap for i in self.images for overlap in i.region_overlaps]

    def to_dict(self) -> dict:
        def rounded(value):
            return None if value is None else round(value, 4)

        regions = self.regions
        times = sorted(i.ms for i in self.images)
        return {
            "folder": self.folder,
            "images": len(self.images),
            "good": len(self._of(False)),
            "defective": len(self._of(True)),
            "errors": sum(i.verdict == ERROR for i in self.images),
            "threshold": rounded(self.threshold),
            "image_auroc": rounded(self.image_auroc),
            "recall": rounded(self.recall),
            "false_reject_rate": rounded(self.false_reject_rate),
            "pixel_auroc": rounded(self.pixel_auroc),
            "defect_regions": len(regions),
            "regions_found": rounded(sum(o > 0 for o in regions) / len(regions)) if regions else None,
            "region_overlap": rounded(float(np.mean(regions))) if regions else None,
            "ms_per_image": round(times[len(times) // 2], 1) if times else None,
            "seconds": round(self.seconds, 1),
            "misses": [i.name for i in self._of(True) if i.verdict not in (FAIL, ERROR)],
            "false_rejects": [i.name for i in self._of(False) if i.verdict in (FAIL, ERROR)],
            "per_image": [
                {"image": i.name, "kind": i.kind, "verdict": i.verdict, "score": rounded(i.score), "ms": round(i.ms, 1)}
                for i in self.images
            ],
        }


def _image_score(result: InspectionResult) -> float:
    if result.anomaly_score is not None:
        return result.anomaly_score
    return max((f.score for f in result.findings), default=0.0)


def _reported(result: InspectionResult, size: tuple[int, int]) -> np.ndarray:
    """The reported outlines filled, each with its confidence, at the image's size."""
    canvas = np.zeros((size[1], size[0]), np.float32)
    for finding in sorted(result.findings, key=lambda f: f.score):
        if len(finding.outline) >= 3:
            cv2.fillPoly(canvas, [np.round(finding.outline).astype(np.int32)], float(finding.score))
    return canvas


def _pixel_map(result: InspectionResult, size: tuple[int, int]) -> np.ndarray:
    if result.anomaly is not None:
        return result.anomaly.in_image(size)
    return _reported(result, size)


def _region_overlaps(mask: np.ndarray, reported: np.ndarray) -> tuple[float, ...]:
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return tuple(float(reported[labels == k].mean()) for k in range(1, count))


def _truth(image: LabelledImage, size: tuple[int, int]) -> np.ndarray:
    """The image's defect mask at its size (empty for a good one, or one without a mask)."""
    if image.mask is None:
        return np.zeros((size[1], size[0]), bool)
    mask = read_image(image.mask)[..., 0] > 127
    if mask.shape != (size[1], size[0]):
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return mask


def evaluate(
    pipeline: InspectionPipeline,
    folder: str | os.PathLike,
    *,
    images: list[LabelledImage] | None = None,
    on_image: Callable[[ImageOutcome], None] | None = None,
) -> Evaluation:
    """Inspect every test image of a labelled folder and measure the recipe (see the
    module's docstring). Nothing is stored. ``images``: the folder's, when already listed."""
    started = time.perf_counter()
    images = images if images is not None else labelled_images(folder)
    evaluation = Evaluation(str(folder), pipeline.anomaly_threshold)
    pixel_scores, pixel_labels = [], []
    rng = np.random.default_rng(0)
    for image in images:
        t = time.perf_counter()
        result = pipeline.inspect_file(image.path)
        ms = (time.perf_counter() - t) * 1e3
        overlaps: tuple[float, ...] = ()
        if result.verdict != ERROR and result.image_size is not None:
            size = tuple(result.image_size)
            try:
                truth = _truth(image, size)
            except InspectorError as exc:
                raise SourceError(f"{image.mask}: the mask of {image.path.name} cannot be read ({exc})") from None
            if not image.defective or image.mask is not None:  # no mask: its defect pixels are unknown
                pixels = _pixel_map(result, size)
                sample = rng.choice(truth.size, min(truth.size, PIXELS_PER_IMAGE), replace=False)
                pixel_scores.append(pixels.reshape(-1)[sample])
                pixel_labels.append(truth.reshape(-1)[sample])
            if truth.any():
                overlaps = _region_overlaps(truth, _reported(result, size) > 0)
        outcome = ImageOutcome(
            image.path.name,
            image.kind,
            result.verdict,
            _image_score(result),
            ms,
            error=result.error,
            region_overlaps=overlaps,
        )
        evaluation.images.append(outcome)
        if on_image is not None:
            on_image(outcome)
    if pixel_scores:
        evaluation.pixel_auroc = auroc(np.concatenate(pixel_scores), np.concatenate(pixel_labels))
    evaluation.seconds = time.perf_counter() - started
    return evaluation
