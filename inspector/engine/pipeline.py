"""One recipe applied to one image: read, align, segment, select, rules, verdict.

Every stage is timed separately. The reference image is segmented once, when the
first image arrives, and reused for every image after it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from inspector.engine.align import AlignmentFailed, ReferenceAligner, transform_points
from inspector.engine.clip import SegmentClassifier
from inspector.engine.defect_classes import label_candidates, recipe_classifier, teach_exemplars
from inspector.engine.image import read_image
from inspector.engine.prompts import select_masks, select_segments
from inspector.engine.rules import expected_features, find_defects, on_grid
from inspector.engine.segmenter import FastSAMSegmenter, Segmenter
from inspector.engine.types import ERROR, FAIL, PASS, Finding, InspectionResult, Segmentation
from inspector.errors import EngineError, InspectorError, RecipeError
from inspector.recipe.model import Recipe
from inspector.recipe.validate import load_reference, reference_problems


@dataclass(frozen=True)
class _Reference:
    segmentation: Segmentation
    part_indices: frozenset[int]
    part_region: np.ndarray  # low-res bool
    features: np.ndarray  # indices of expected features
    aligner: ReferenceAligner | None


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
        for x1, y1, x2, y2 in segmentation.lowres_boxes(np.array(prompts.boxes).reshape(-1, 4)).astype(int):
            part_region[y1:y2, x1:x2] = True
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


def defect_candidates(
    segmentation: Segmentation,
    regions: Regions,
    rules,
    *,
    reference_masks: np.ndarray | None = None,
    reference_features: np.ndarray | None = None,
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


class InspectionPipeline:
    """Applies one recipe to images.

    Args:
        recipe: a validated recipe.
        segmenter: the segmenter to use; by default the recipe's model, loaded once.
        classifier: labels defects with the recipe's classes; by default CLIP, built
            when the recipe has classes or exemplars (and never otherwise).
        device: device for the default segmenter and classifier.
        backend: the default segmenter's backend (``auto``, ``torch`` or ``onnx``).
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        segmenter: Segmenter | None = None,
        classifier: SegmentClassifier | None = None,
        device: str = "auto",
        backend: str = "auto",
    ) -> None:
        self.recipe = recipe
        self.recipe_hash = recipe.content_hash
        self.reference_image = load_reference(recipe)
        problems = reference_problems(recipe, self.reference_image)
        if problems:
            origin = recipe.source or "recipe"
            raise RecipeError(f"{origin}: " + f"\n{origin}: ".join(problems))
        self.segmenter = segmenter or FastSAMSegmenter(
            recipe.weights_spec,
            device=device,
            imgsz=recipe.model.imgsz,
            conf=recipe.model.conf,
            iou=recipe.model.iou,
            expected_sha256=recipe.model.sha256,
            backend=backend,
        )
        self._device = device
        self._classifier = classifier
        self._reference: _Reference | None = None
        self._lock = threading.Lock()

    @property
    def model(self):
        return self.segmenter.identity

    # -- reference ---------------------------------------------------------------------

    def _segment(self, image: np.ndarray, original_size: tuple[int, int] | None = None) -> Segmentation:
        m = self.recipe.model
        extra = {"original_size": original_size} if original_size is not None else {}
        return self.segmenter.segment(image, imgsz=m.imgsz, conf=m.conf, iou=m.iou, **extra)

    def prepare(self) -> None:
        """Segment the reference image now (otherwise done with the first image)."""
        with self._lock:
            if self._reference is not None:
                return
            segmentation = self._segment(self.reference_image)
            try:
                regions = select_regions(segmentation, self.recipe)
                part_indices, part_region = regions.part_indices, regions.part_region
            except PartNotFound:
                raise EngineError(
                    f"{self.recipe.source or 'recipe'}: the part prompts select nothing on the reference image"
                ) from None
            rules = self.recipe.defects
            pixel_area = 1.0 / segmentation.scale**2
            features = (
                expected_features(
                    segmentation.masks,
                    part_region=part_region,
                    part_indices=part_indices,
                    rules=rules,
                    pixel_area=pixel_area,
                )
                if rules.missing_features
                else np.zeros(0, np.int64)
            )
            aligner = None
            if self.recipe.alignment.method == "orb":
                # Features come from the part: its segment and the recipe's part boxes
                # (which still hold when the segment is imperfect).
                region = (
                    cv2.resize(part_region.astype(np.uint8), segmentation.image_size, interpolation=cv2.INTER_NEAREST)
                    > 0
                )
                if len(part_indices) == 0:
                    region[:] = True
                for x1, y1, x2, y2 in self.recipe.part.boxes:
                    region[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
                aligner = ReferenceAligner(
                    self.reference_image,
                    region=region,
                    max_features=self.recipe.alignment.max_features,
                    min_inliers=self.recipe.alignment.min_inliers,
                )
            if self.recipe.defects.uses_clip:
                self._prepare_classifier(segmentation)
            self._reference = _Reference(segmentation, part_indices, part_region, features, aligner)

    def _prepare_classifier(self, reference: Segmentation) -> None:
        if self._classifier is None:
            self._classifier = recipe_classifier(self.recipe, device=self._device)
        if self.recipe.defects.exemplars:
            teach_exemplars(
                self._classifier,
                self.recipe,
                segment=self._segment,
                reference_image=self.reference_image,
                reference=reference,
            )

    # -- images ------------------------------------------------------------------------

    def error_result(self, message: str, timings: dict[str, float] | None = None, size=None) -> InspectionResult:
        """An ERROR result of this recipe and model, with the reason."""
        return InspectionResult(ERROR, (), size, dict(timings or {}), self.recipe_hash, self.model, error=message)

    def inspect_file(self, path: str | os.PathLike) -> InspectionResult:
        """Inspect an image file; an unreadable file is an ERROR result, not an exception."""
        t0 = time.perf_counter()
        try:
            image = read_image(path)
        except InspectorError as exc:
            return self.error_result(str(exc), {"read": (time.perf_counter() - t0) * 1e3})
        read_ms = (time.perf_counter() - t0) * 1e3
        return self.inspect(image).with_timing("read", read_ms)

    def inspect(self, image: np.ndarray) -> InspectionResult:
        """Inspect one (H, W, 3) uint8 BGR image."""
        if self._reference is None:
            self.prepare()
        ref = self._reference
        timings: dict[str, float] = {}
        size = (image.shape[1], image.shape[0])
        t = time.perf_counter()
        matrix = None
        if ref.aligner is not None:
            try:
                matrix = ref.aligner.homography(image)
            except AlignmentFailed as exc:
                timings["align"] = (time.perf_counter() - t) * 1e3
                return self.error_result(str(exc), timings, size)
            # The network sees at most imgsz pixels a side: warp straight to that size
            # (the cost follows the output), and segment in reference pixels.
            reference_size = ref.segmentation.image_size
            shrink = min(1.0, self.recipe.model.imgsz / max(reference_size))
            network_input = ref.aligner.warp(image, matrix, scale=shrink)
            original_size = reference_size if shrink < 1.0 else None
        elif size != ref.segmentation.image_size:
            rw, rh = ref.segmentation.image_size
            return self.error_result(
                f"image is {size[0]}x{size[1]} but the reference is {rw}x{rh}; "
                "use a camera of the same resolution or enable alignment",
                timings,
                size,
            )
        else:
            network_input, original_size = image, None
        timings["align"] = (time.perf_counter() - t) * 1e3

        segmentation = self._segment(network_input, original_size)
        timings.update(segmentation.timings)

        t = time.perf_counter()
        try:
            regions = select_regions(segmentation, self.recipe)
        except PartNotFound as exc:
            timings["select"] = (time.perf_counter() - t) * 1e3
            return self.error_result(str(exc), timings, size)
        timings["select"] = (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        grid = segmentation.masks.shape[1:]
        candidates = defect_candidates(
            segmentation,
            regions,
            self.recipe.defects,
            reference_masks=on_grid(ref.segmentation.masks, grid),
            reference_features=ref.features,
        )
        timings["rules"] = (time.perf_counter() - t) * 1e3

        # Full resolution only for what is reported, and only inside each segment's box.
        t = time.perf_counter()
        patches = [(ref.segmentation if c.missing else segmentation).mask_in_box(c.index) for c in candidates]
        defects = list(zip(candidates, patches, strict=True))
        patch_ms = (time.perf_counter() - t) * 1e3
        if self._classifier is not None and candidates:
            t = time.perf_counter()
            # CLIP looks at the full-resolution pixels, in the reference frame.
            frame = image if matrix is None else ref.aligner.warp(image, matrix)
            defects = label_candidates(self._classifier, frame, candidates, patches)
            timings["classify"] = (time.perf_counter() - t) * 1e3
        verdict = FAIL if len(defects) > self.recipe.defects.allowed else PASS

        t = time.perf_counter()
        findings = tuple(self._finding(c, patch, segmentation, ref, matrix) for c, patch in defects)
        timings["outline"] = patch_ms + (time.perf_counter() - t) * 1e3
        return InspectionResult(verdict, findings, size, timings, self.recipe_hash, self.model)

    def _finding(self, candidate, patch, segmentation: Segmentation, ref: _Reference, matrix) -> Finding:
        source = ref.segmentation if candidate.missing else segmentation
        (x0, y0), mask = patch
        outline = outline_of(mask)
        if len(outline):
            outline = outline + np.array([x0, y0], np.float32)
        if matrix is not None and len(outline):
            outline = transform_points(outline, np.linalg.inv(matrix))
        area = float(mask.sum()) if not candidate.missing else candidate.area
        if len(outline):
            box = (
                float(outline[:, 0].min()),
                float(outline[:, 1].min()),
                float(outline[:, 0].max()),
                float(outline[:, 1].max()),
            )
        else:
            box = tuple(float(v) for v in source.boxes[candidate.index])
        return Finding(candidate.label, candidate.score, area, box, outline)
