"""One recipe applied to one image: read, align, segment, select, rules, verdict.

Every stage is timed separately. The reference image is segmented once, when the
first image arrives, and reused for every image after it.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from inspector.engine.align import WORK_SIDE as ALIGN_WORK_SIDE
from inspector.engine.align import AlignmentFailed, ReferenceAligner, transform_points
from inspector.engine.change import Difference, changed_fractions, differences, pixels_on_grid
from inspector.engine.clip import SegmentClassifier
from inspector.engine.defect_classes import label_candidates, recipe_classifier, teach_exemplars
from inspector.engine.image import (
    colour_share,
    decode_reduced,
    from_reduced,
    is_monochrome,
    read_bytes,
    reduction_of,
)
from inspector.engine.preflight import checked_reference, raise_problems, setup_problems
from inspector.engine.regions import (
    PartNotFound,
    Regions,
    defect_candidates,
    outline_of,
    part_outline,
    part_window,
    select_regions,
)
from inspector.engine.rules import DIFFERENCE_LABEL, expected_features, on_grid
from inspector.engine.segmenter import FastSAMSegmenter, Segmenter
from inspector.engine.threads import limit_blas_threads
from inspector.engine.types import ERROR, FAIL, PASS, Finding, InspectionResult, Segmentation
from inspector.errors import EngineError, InspectorError
from inspector.recipe.io import recipe_hash
from inspector.recipe.model import Recipe


@dataclass(frozen=True)
class Registration:
    """An image aligned to the reference, with what the network will see of it.

    ``size`` is the image's full (width, height); ``matrix`` maps its pixels to the
    reference's (None: not aligned); ``network_input`` is the image cut and scaled for the
    network, standing for ``original_size`` reference pixels (None: its own size).
    ``fine``: registered to about a pixel, so that its pixels can be compared with the
    reference's. ``error`` says why the image cannot be inspected; ``unaligned`` why its
    features did not register it (the outline is then tried, see
    ``InspectionPipeline.register``).
    """

    size: tuple[int, int]
    matrix: np.ndarray | None
    network_input: np.ndarray | None
    original_size: tuple[int, int] | None
    align_ms: float
    fine: bool = True
    error: str | None = None
    unaligned: str | None = None


@dataclass(frozen=True)
class _Reference:
    segmentation: Segmentation
    part_indices: frozenset[int]
    part_region: np.ndarray  # low-res bool
    features: np.ndarray  # indices of expected features
    aligner: ReferenceAligner | None
    window: tuple[int, int, int, int] | None  # what the network sees, in reference pixels
    outline: np.ndarray | None  # the part's silhouette on the whole image (low-res bool)
    view: np.ndarray  # the reference image as the network saw it (the window, or all of it)
    in_colour: bool  # whether the reference has colour a monochrome image would lack


# Segments are kept down to this fraction of the recipe's confidence, for matching only
# (hysteresis): a print the model segments at 0.12 in one image and 0.08 in the next is
# still recognised as the reference's print, and still counts as present; defects and
# prompts use the recipe's confidence itself.
MATCH_CONF_RATIO = 0.5

# A reference with colour on this share of its pixels or more is "in colour": a
# monochrome image of its part would differ from it everywhere there is colour.
_COLOUR_SHARE = 0.01


def _read_reference(recipe: Recipe, *, validate: bool, import_torch: bool) -> np.ndarray:
    """The recipe's reference image, checked (with ``validate``, the rest of the recipe
    too, as ``validate_recipe`` does); with ``import_torch``, torch is imported meanwhile.

    Decoding a large PNG leaves the interpreter free (0.3 s at 12 megapixels) while
    importing torch holds it for seconds, so on a machine with a second core one costs
    nothing beside the other; the network, on either backend, needs torch soon anyway.
    The rest of the recipe is checked first, on this thread: a missing model is said at
    once rather than after torch's import, and finding CLIP imports torch itself, which
    must not happen on two threads at once. (Importing torch on Linux changes no
    environment variable that the reading thread could be reading.)
    """
    problems = setup_problems(recipe) if validate else []
    if problems or not import_torch:
        reference, reference_problems = checked_reference(recipe)
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="inspector-reference") as pool:
            reading = pool.submit(checked_reference, recipe)
            import torch  # noqa: F401

            reference, reference_problems = reading.result()
    raise_problems(recipe, reference_problems + problems)
    return reference


class InspectionPipeline:
    """Applies one recipe to images.

    Args:
        recipe: the recipe; checked here with ``validate``, else it must have been
            checked (``validate_recipe``) before.
        segmenter: the segmenter to use; by default the recipe's model, loaded once.
        classifier: labels defects with the recipe's classes; by default CLIP, built
            when the recipe has classes or exemplars (and never otherwise).
        device: device for the default segmenter and classifier.
        backend: the default segmenter's backend (``auto``, ``torch`` or ``onnx``).
        validate: check the whole recipe first, as ``validate_recipe`` does, decoding
            its reference once (while torch is imported).
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        segmenter: Segmenter | None = None,
        classifier: SegmentClassifier | None = None,
        device: str = "auto",
        backend: str = "auto",
        validate: bool = False,
    ) -> None:
        limit_blas_threads()
        self.recipe = recipe
        self.recipe_hash = recipe_hash(recipe)
        self.reference_image = _read_reference(recipe, validate=validate, import_torch=segmenter is None)
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
        self._views: dict[tuple[int, int], np.ndarray] = {}  # see _reference_view
        self._lock = threading.Lock()

    @property
    def model(self):
        return self.segmenter.identity

    # -- reference ---------------------------------------------------------------------

    def _segment(self, image: np.ndarray, original_size: tuple[int, int] | None = None) -> Segmentation:
        """Every segment down to the matching confidence, most confident first."""
        m = self.recipe.model
        extra = {"original_size": original_size} if original_size is not None else {}
        conf = m.conf * MATCH_CONF_RATIO
        return self.segmenter.segment(image, imgsz=m.imgsz, conf=conf, iou=m.iou, **extra).ranked()

    def _confident(self, segmentation: Segmentation) -> Segmentation:
        """The segments at the recipe's confidence: what prompts select and defects come from."""
        return segmentation.head(int((segmentation.scores >= self.recipe.model.conf).sum()))

    def prepare(self) -> None:
        """Segment the reference image now (otherwise done with the first image)."""
        with self._lock:
            if self._reference is not None:
                return
            everything = self._segment(self.reference_image)
            whole = self._confident(everything)
            regions = self._reference_regions(whole)
            aligner = self._aligner(whole, regions) if self.recipe.alignment.method == "orb" else None
            outline = part_outline(whole, regions)
            window = None
            view = self.reference_image
            if self.recipe.model.window == "part":
                window = part_window(whole, regions.part_region, self.recipe.part.boxes)
                view, original_size = self._network_input(self.reference_image, None, window)
                everything = self._placed(self._segment(view, original_size), window)
                regions = self._reference_regions(self._confident(everything))
            segmentation = self._confident(everything)
            rules = self.recipe.defects
            features = (
                expected_features(
                    segmentation.masks,
                    part_region=regions.part_region,
                    part_indices=regions.part_indices,
                    rules=rules,
                    pixel_area=1.0 / segmentation.scale**2,
                )
                if rules.missing_features
                else np.zeros(0, np.int64)
            )
            if self.recipe.defects.uses_clip:
                self._prepare_classifier(segmentation)
            # Feature indices point into the confident head, which ``everything`` starts with.
            self._reference = _Reference(
                everything,
                regions.part_indices,
                regions.part_region,
                features,
                aligner,
                window,
                outline,
                view,
                in_colour=colour_share(self.reference_image) >= _COLOUR_SHARE,
            )

    def worker_copy(self, *, threads: int | None = None) -> InspectionPipeline:
        """This pipeline for another thread that inspects images at the same time.

        The copy shares the recipe, the segmented reference and the classifier, and runs
        its own replica of the network (``threads``: see ``FastSAMSegmenter.replica``).
        """
        self.prepare()
        twin = copy.copy(self)
        twin.segmenter = self.segmenter.replica(threads=threads)
        twin._lock = threading.Lock()
        return twin

    def _reference_regions(self, segmentation: Segmentation) -> Regions:
        try:
            return select_regions(segmentation, self.recipe)
        except PartNotFound:
            raise EngineError(
                f"{self.recipe.source or 'recipe'}: the part prompts select nothing on the reference image"
            ) from None

    def _aligner(self, whole: Segmentation, regions: Regions) -> ReferenceAligner:
        # Features come from the part: its segment and the recipe's part boxes (which
        # still hold when the segment is imperfect).
        region = cv2.resize(regions.part_region.astype(np.uint8), whole.image_size, interpolation=cv2.INTER_NEAREST) > 0
        if len(regions.part_indices) == 0:
            region[:] = True
        for x1, y1, x2, y2 in self.recipe.part.boxes:
            region[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
        return ReferenceAligner(
            self.reference_image,
            region=region,
            max_features=self.recipe.alignment.max_features,
            min_inliers=self.recipe.alignment.min_inliers,
        )

    def _align_by_outline(self, image: np.ndarray, full_size: tuple[int, int]) -> np.ndarray:
        """Last resort for a part that lost most of its prints: register it by its outline,
        taken from a segmentation of the whole image (one more network pass)."""
        ref = self._reference
        if ref.outline is None or full_size != ref.segmentation.image_size:
            raise AlignmentFailed("no outline to align by (needs part prompts and an image of the reference's size)")
        whole = self._confident(self._segment(image, full_size))  # in the full image's pixels
        try:
            outline = part_outline(whole, select_regions(whole, self.recipe))
        except PartNotFound:
            outline = None
        if outline is None:
            raise AlignmentFailed("the part prompts select nothing to align by")
        return ref.aligner.from_silhouettes(ref.outline, outline)

    def _network_input(self, image: np.ndarray, matrix: np.ndarray | None, window):
        """What the network gets for an image registered by ``matrix`` (None: not aligned).

        Returns the image to segment and the (width, height) in reference pixels it
        stands for (None: its own size). The network sees at most ``imgsz`` pixels a
        side, so an aligned image is warped straight to that size (the cost follows the
        output), and a window is cut out and scaled to it.
        """
        imgsz = self.recipe.model.imgsz
        reference_size = self._reference_size
        if window is not None:
            x1, y1, x2, y2 = window
            if matrix is None:
                return image[y1:y2, x1:x2], None
            size = (x2 - x1, y2 - y1)
            return self._reference.aligner.warp(image, matrix, scale=imgsz / max(size), window=window), size
        if matrix is None:
            return image, None
        shrink = min(1.0, imgsz / max(reference_size))
        return self._reference.aligner.warp(image, matrix, scale=shrink), (reference_size if shrink < 1.0 else None)

    def _placed(self, segmentation: Segmentation, window) -> Segmentation:
        """A segmentation of ``window`` (None: of the whole frame) in reference pixels."""
        return segmentation if window is None else segmentation.placed(window[:2], self._reference_size)

    @property
    def _reference_size(self) -> tuple[int, int]:
        return self.reference_image.shape[1], self.reference_image.shape[0]

    def _prepare_classifier(self, reference: Segmentation) -> None:
        if self._classifier is None:
            self._classifier = recipe_classifier(self.recipe, device=self._device)
        if self.recipe.defects.exemplars:
            teach_exemplars(
                self._classifier,
                self.recipe,
                segment=lambda image: self._confident(self._segment(image)),
                reference_image=self.reference_image,
                reference=reference,
            )

    # -- images ------------------------------------------------------------------------

    def error_result(self, message: str, timings: dict[str, float] | None = None, size=None) -> InspectionResult:
        """An ERROR result of this recipe and model, with the reason."""
        return InspectionResult(ERROR, (), size, dict(timings or {}), self.recipe_hash, self.model, error=message)

    def inspect_file(self, path: str | os.PathLike) -> InspectionResult:
        """Inspect an image file; an unreadable file is an ERROR result, not an exception."""
        min_side = self.decode_side()
        t0 = time.perf_counter()
        try:
            image, full_size = decode_reduced(read_bytes(path), name=str(path), min_side=min_side)
        except InspectorError as exc:
            return self.error_result(str(exc), {"read": (time.perf_counter() - t0) * 1e3})
        read_ms = (time.perf_counter() - t0) * 1e3
        return self.inspect(image, full_size=full_size).with_timing("read", read_ms)

    def decode_side(self) -> int | None:
        """Pixels an image needs on its longer side; None: decode every image in full.

        An aligned image is warped to what the network sees anyway, and registered at
        800 px at most: a 12-megapixel camera needs no 12-megapixel decode for that (see
        ``decode_reduced``). Not without alignment (the image is used as it is) nor with
        CLIP classes (which look at full-resolution pixels). Results stay in the
        full-size image's pixels. Segments the reference first if that is not done yet.
        """
        if self.recipe.alignment.method != "orb" or self.recipe.defects.uses_clip:
            return None
        if self._reference is None:
            self.prepare()
        width, height = self._reference.segmentation.image_size
        x1, y1, x2, y2 = self._reference.window or (0, 0, width, height)
        # The network sees the window at imgsz: the frame, which shows what the
        # reference shows, needs that many pixels per reference pixel.
        for_network = max(width, height) * self.recipe.model.imgsz / max(x2 - x1, y2 - y1)
        return int(np.ceil(max(for_network, ALIGN_WORK_SIDE)))

    def register(self, image: np.ndarray, *, full_size: tuple[int, int] | None = None) -> Registration:
        """Align an image to the reference and cut out what the network will see.

        The part of inspecting that needs no network. An image whose features and edges
        do not register it is left for :meth:`inspect` to align by its outline, which
        takes a network pass. ``full_size`` as in :meth:`inspect`.
        """
        if self._reference is None:
            self.prepare()
        ref = self._reference
        size = tuple(full_size) if full_size is not None else (image.shape[1], image.shape[0])
        t = time.perf_counter()
        if ref.aligner is not None:
            try:
                alignment = ref.aligner.align(image, full_size=size)
            except AlignmentFailed as by_features:
                return Registration(size, None, None, None, (time.perf_counter() - t) * 1e3, unaligned=str(by_features))
            return self._registered(image, size, alignment.matrix, t, fine=alignment.fine)
        reduced = reduction_of((image.shape[1], image.shape[0]), size)
        if size != ref.segmentation.image_size or reduced != 1:
            rw, rh = ref.segmentation.image_size
            error = (
                f"image is {size[0]}x{size[1]} (decoded at {image.shape[1]}x{image.shape[0]}) "
                f"but the reference is {rw}x{rh}; use a camera of the same resolution or enable alignment"
            )
            return Registration(size, None, None, None, 0.0, error=error)
        return self._registered(image, size, None, t)

    def _registered(self, image: np.ndarray, size, matrix, started: float, *, fine: bool = True) -> Registration:
        # From the pixels at hand to the reference's (through the full-size image's).
        reduced = reduction_of((image.shape[1], image.shape[0]), size)
        warp = None if matrix is None else matrix @ from_reduced(reduced)
        network_input, original_size = self._network_input(image, warp, self._reference.window)
        align_ms = (time.perf_counter() - started) * 1e3
        return Registration(size, matrix, network_input, original_size, align_ms, fine=fine)

    def inspect(
        self,
        image: np.ndarray,
        *,
        full_size: tuple[int, int] | None = None,
        registration: Registration | None = None,
    ) -> InspectionResult:
        """Inspect one (H, W, 3) uint8 BGR image.

        ``full_size`` is the image's (width, height) when ``image`` is it decoded smaller
        (see :meth:`decode_side`); results are in the full-size pixels. ``registration``
        is this image's :meth:`register`, when that was done already.
        """
        if registration is None:
            registration = self.register(image, full_size=full_size)
        ref = self._reference
        size = registration.size
        timings: dict[str, float] = {"align": registration.align_ms}
        if registration.error:
            return self.error_result(registration.error, timings, size)
        if ref.in_colour and is_monochrome(image):
            # Every coloured feature would differ from the reference: a wrong FAIL.
            message = (
                "the image has no colour but the recipe's reference has (a camera set to monochrome, "
                "or every coloured part of the product missing)"
            )
            return self.error_result(message, timings, size)
        if registration.unaligned:
            t = time.perf_counter()
            try:
                matrix = self._align_by_outline(image, size)
            except AlignmentFailed as by_outline:
                timings["align"] += (time.perf_counter() - t) * 1e3
                return self.error_result(f"{registration.unaligned}; {by_outline}", timings, size)
            # An outline registers a part to a few pixels only (see Registration.fine).
            registration = self._registered(image, size, matrix, t, fine=False)
            timings["align"] += registration.align_ms
        matrix, network_input = registration.matrix, registration.network_input
        # The pixels are compared with the reference's only where the registration is
        # fine; elsewhere the comparison would mostly see the registration's error.
        compare = registration.fine

        segmentation = self._placed(self._segment(network_input, registration.original_size), ref.window)
        timings.update(segmentation.timings)

        t = time.perf_counter()
        try:
            regions = select_regions(self._confident(segmentation), self.recipe)
        except PartNotFound as exc:
            timings["select"] = (time.perf_counter() - t) * 1e3
            return self.error_result(str(exc), timings, size)
        timings["select"] = (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        reference_masks = on_grid(ref.segmentation.masks, segmentation.masks.shape[1:])
        candidates = defect_candidates(
            segmentation,
            regions,
            self.recipe.defects,
            reference_masks=reference_masks,
            reference_features=ref.features,
            min_score=self.recipe.model.conf,
            changed=self._change_meter(segmentation, network_input, regions)
            if compare and self.recipe.defects.changed_fraction
            else None,
        )
        unsegmented: list[Finding] = []
        if compare and self.recipe.defects.differences:
            reported = regions.ignore_region.copy()
            for c in candidates:
                reported |= (reference_masks if c.missing else segmentation.masks)[c.index]
            unsegmented = self._differences(network_input, regions.part_region, reported, matrix)
        timings["rules"] = (time.perf_counter() - t) * 1e3

        # Full resolution only for what is reported, and only inside each segment's box.
        t = time.perf_counter()
        patches = [(ref.segmentation if c.missing else segmentation).mask_in_box(c.index) for c in candidates]
        defects = list(zip(candidates, patches, strict=True))
        patch_ms = (time.perf_counter() - t) * 1e3
        if self._classifier is not None and candidates:
            t = time.perf_counter()
            # CLIP looks at the full-resolution pixels, in the reference frame.
            if matrix is None:
                frame = image
            else:
                reduced = reduction_of((image.shape[1], image.shape[0]), size)
                frame = ref.aligner.warp(image, matrix @ from_reduced(reduced))
            defects = label_candidates(self._classifier, frame, candidates, patches)
            timings["classify"] = (time.perf_counter() - t) * 1e3
        verdict = FAIL if len(defects) + len(unsegmented) > self.recipe.defects.allowed else PASS

        t = time.perf_counter()
        findings = tuple(self._finding(c, patch, segmentation, ref, matrix) for c, patch in defects)
        findings += tuple(unsegmented)
        timings["outline"] = patch_ms + (time.perf_counter() - t) * 1e3
        return InspectionResult(verdict, findings, size, timings, self.recipe_hash, self.model)

    def _reference_view(self, size: tuple[int, int]) -> np.ndarray:
        """The reference as the network saw it, at ``size`` (width, height): made once per
        size, since a full-size reference takes milliseconds to shrink."""
        view = self._views.get(size)
        if view is None:
            view = self._views[size] = cv2.resize(self._reference.view, size, interpolation=cv2.INTER_AREA)
        return view

    def _change_meter(self, segmentation: Segmentation, network_input: np.ndarray, regions: Regions):
        """How much of each of some segments differs from the reference (engine/change.py)."""
        grid = segmentation.lowres_size
        image = pixels_on_grid(network_input, grid)
        reference = self._reference_view(grid).astype(np.float32)
        return lambda indices: changed_fractions(image, reference, segmentation.masks[indices], regions.part_region)

    def _differences(
        self, network_input: np.ndarray, part_region: np.ndarray, reported: np.ndarray, matrix
    ) -> list[Finding]:
        """Visible differences from the reference inside the part that no reported defect
        (or ignored area) explains, as findings in the image's pixels (engine/change.py).

        ``part_region`` and ``reported`` are low-resolution masks over the network input.
        """
        image = network_input
        limit = self.recipe.model.imgsz
        if max(image.shape[:2]) > limit:  # not warped (no alignment): compare at the network's size
            f = limit / max(image.shape[:2])
            image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]

        def full(grid_mask: np.ndarray) -> np.ndarray:
            return cv2.resize(grid_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0

        blobs = differences(image, self._reference_view((w, h)), full(part_region))
        if not blobs:
            return []
        explained = full(reported)
        x0, y0, x1, _ = self._reference.window or (0, 0, *self._reference_size)
        per_reference_pixel = w / (x1 - x0)
        rules = self.recipe.defects
        found = []
        for blob in blobs:
            (bx, by), mask = blob.origin, blob.mask
            if explained[by : by + mask.shape[0], bx : bx + mask.shape[1]][mask].mean() >= 0.1:
                continue  # a reported defect, or ignored
            area = float(mask.sum()) / per_reference_pixel**2
            if not rules.min_area <= area <= rules.max_area:
                continue
            found.append(self._difference_finding(blob, per_reference_pixel, (x0, y0), area, matrix))
        return found

    @staticmethod
    def _difference_finding(blob: Difference, per_reference_pixel: float, origin, area: float, matrix) -> Finding:
        # Pixel centres of the compared image, in the reference's pixels, then the image's.
        outline = (outline_of(blob.mask) + np.float32(blob.origin) + 0.5) / per_reference_pixel - 0.5
        outline = _to_image(outline + np.float32(origin), matrix).astype(np.float32)
        return Finding(DIFFERENCE_LABEL, min(1.0, blob.change), area, _bounds(outline), outline)

    def _finding(self, candidate, patch, segmentation: Segmentation, ref: _Reference, matrix) -> Finding:
        source = ref.segmentation if candidate.missing else segmentation
        (x0, y0), mask = patch
        outline = outline_of(mask)
        if len(outline):
            outline = _to_image(outline + np.array([x0, y0], np.float32), matrix)
        area = float(mask.sum()) if not candidate.missing else candidate.area
        if len(outline):
            box = _bounds(outline)
        else:  # too small to outline: its box, in the image's pixels like the outlines
            x1, y1, x2, y2 = (float(v) for v in source.boxes[candidate.index])
            box = _bounds(_to_image(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32), matrix))
        return Finding(candidate.label, candidate.score, area, box, outline)


def _to_image(points: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """(K, 2) reference pixels in the image's pixels (``matrix`` maps image to reference)."""
    return points if matrix is None else transform_points(points, np.linalg.inv(matrix))


def _bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    """The box (x1, y1, x2, y2) around (K, 2) points."""
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)
