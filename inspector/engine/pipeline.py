"""One recipe applied to images: the stages of ``engine/stages``, in order, each timed.

The reference is prepared once (``engine/reference.py``), when the first image needs it;
then every image goes through :data:`STAGES`. To add a stage, write its module in
``engine/stages/`` and add one line here.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from inspector.engine.clip import SegmentClassifier
from inspector.engine.defect_classes import recipe_classifier, teach_exemplars
from inspector.engine.image import Picture, decode_reduced, read_bytes
from inspector.engine.normal_file import load_normal_model
from inspector.engine.preflight import checked_reference, raise_problems, setup_problems
from inspector.engine.reference import PreparedReference, confident, prepare_reference, segment_everything
from inspector.engine.regions import PartNotFound
from inspector.engine.segmenter import Segmenter, shared_segmenter
from inspector.engine.stages import (
    ImageError,
    ImageWork,
    Stage,
    StageContext,
    anomaly,
    classify,
    compare,
    outline,
    register,
    rules,
    segment,
    select,
    verdict,
)
from inspector.engine.stages.anomaly import threshold_of
from inspector.engine.stages.register import Registration, decode_side, registration_of
from inspector.engine.threads import limit_blas_threads
from inspector.engine.types import ERROR, InspectionResult
from inspector.errors import EngineError, InspectorError
from inspector.recipe.io import recipe_hash
from inspector.recipe.model import Recipe

__all__ = ["PART_STAGES", "STAGES", "InspectionPipeline", "Registration", "open_pipeline"]

# The stages that find the part: what teaching needs of a good image too.
PART_STAGES: tuple[Stage, ...] = (
    register.STAGE,  # aligned to the reference, cut to what the network sees
    segment.STAGE,  # every segment the network finds
    select.STAGE,  # the part, normal surfaces, ignored areas
)
STAGES: tuple[Stage, ...] = (
    *PART_STAGES,
    rules.STAGE,  # candidate defects against the reference's segments
    compare.STAGE,  # visible differences no segment explains
    anomaly.STAGE,  # regions unlike the good parts a recipe was taught with
    outline.MASKS,  # full-resolution masks of the candidates
    classify.STAGE,  # text classes and exemplars
    verdict.STAGE,  # PASS or FAIL
    outline.STAGE,  # polygons in the image's pixels
)


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
        segmenter: the segmenter to use; by default the recipe's model, loaded once per
            process (``shared_segmenter``).
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
        self.segmenter = segmenter or shared_segmenter(
            recipe.weights_spec, device=device, backend=backend, expected_sha256=recipe.model.sha256
        )
        self.stages = tuple(stage for stage in STAGES if stage.wanted(recipe))
        self._device = device
        self._classifier = classifier
        self._context: StageContext | None = None
        self._lock = threading.Lock()

    @property
    def model(self):
        return self.segmenter.identity

    @property
    def reference(self) -> PreparedReference:
        """The prepared reference (``engine/reference.py``), made by the first caller:
        the network runs on the reference image then, and CLIP loads for recipes with
        classes. Raises EngineError when the part prompts select nothing on it."""
        return self._stage_context().reference

    @property
    def anomaly_threshold(self) -> float | None:
        """The score above which an image's anomaly map finds a defect, for a taught
        recipe (the recipe's own threshold, else the taught one); else None."""
        if not self.recipe.taught:
            return None
        return threshold_of(self.recipe, self._stage_context().normal)

    def _stage_context(self) -> StageContext:
        with self._lock:
            if self._context is None:
                segment_fn = segment_everything(self.segmenter, self.recipe)
                origin = self.recipe.source or "recipe"
                try:
                    reference = prepare_reference(self.recipe, self.reference_image, segment_fn)
                except PartNotFound:
                    raise EngineError(f"{origin}: the part prompts select nothing on the reference image") from None
                except EngineError as exc:  # e.g. a reference without features to register images by
                    raise EngineError(f"{origin}: {exc}") from None
                classifier = self._prepare_classifier(reference) if self.recipe.defects.uses_clip else None
                normal = (
                    load_normal_model(self.recipe.resolve(self.recipe.anomaly.model)) if self.recipe.taught else None
                )
                self._context = StageContext(self.recipe, reference, segment_fn, classifier, normal)
            return self._context

    def _prepare_classifier(self, reference: PreparedReference) -> SegmentClassifier:
        classifier = self._classifier or recipe_classifier(self.recipe, device=self._device)
        if self.recipe.defects.exemplars:
            segment_fn = segment_everything(self.segmenter, self.recipe)
            teach_exemplars(
                classifier,
                self.recipe,
                segment=lambda image: confident(segment_fn(image, None), self.recipe),
                reference_image=self.reference_image,
                reference=confident(reference.segmentation, self.recipe),
            )
        return classifier

    def worker_copy(self, *, threads: int | None = None) -> InspectionPipeline:
        """This pipeline for another thread that inspects images at the same time.

        The copy shares the recipe, the prepared reference and the classifier, and runs
        its own replica of the network (``threads``: see ``Segmenter.replica``).
        """
        context = self._stage_context()
        twin = copy.copy(self)
        twin.segmenter = self.segmenter.replica(threads=threads)
        twin._context = replace(context, segment=segment_everything(twin.segmenter, self.recipe))
        twin._lock = threading.Lock()
        return twin

    # -- images ------------------------------------------------------------------------

    def error_result(self, message: str, timings: dict[str, float] | None = None, size=None) -> InspectionResult:
        """An ERROR result of this recipe and model, with the reason."""
        return InspectionResult(ERROR, (), size, dict(timings or {}), self.recipe_hash, self.model, error=message)

    def inspect_file(self, path: str | os.PathLike) -> InspectionResult:
        """Inspect an image file; an unreadable file is an ERROR result, not an exception."""
        min_side = self.decode_side()
        t0 = time.perf_counter()
        try:
            picture = decode_reduced(read_bytes(path), name=str(path), min_side=min_side)
        except InspectorError as exc:
            return self.error_result(str(exc), {"read": (time.perf_counter() - t0) * 1e3})
        read_ms = (time.perf_counter() - t0) * 1e3
        return self.inspect(picture).with_timing("read", read_ms)

    def decode_side(self, *, anomaly: bool | None = None) -> int | None:
        """Pixels an image needs on its longer side; None: decode every image in full
        (see ``stages.register.decode_side``). Prepares the reference if not done yet."""
        return decode_side(self.recipe, self.reference, anomaly=anomaly)

    def register(self, picture: Picture) -> Registration:
        """Align an image to the reference and cut out what the network will see: the
        part of inspecting that needs no network, for doing ahead on another thread."""
        return registration_of(self.recipe, self.reference, picture)

    def inspect(self, image: np.ndarray | Picture, *, registration: Registration | None = None) -> InspectionResult:
        """Inspect one image: (H, W, 3) uint8 BGR pixels, or a :class:`Picture` decoded
        smaller than its file (results are in the full-size pixels).

        ``registration`` is this image's :meth:`register`, when that was done already.
        """
        picture = image if isinstance(image, Picture) else Picture.of(image)
        work = ImageWork(picture, registration=registration)
        failed = self._run(self.stages, work)
        method = work.registration.method if work.registration is not None else None
        if failed is not None:
            result = self.error_result(str(failed), work.timings, picture.full_size)
            return replace(result, registration=method)
        return InspectionResult(
            work.verdict,
            work.findings,
            picture.full_size,
            work.timings,
            self.recipe_hash,
            self.model,
            registration=method,
            anomaly_score=work.anomaly_score,
            anomaly=work.anomaly_map,
        )

    def examine(self, picture: Picture) -> ImageWork:
        """The part found in an image: registered, segmented, its regions selected (the
        ``PART_STAGES``), as teaching needs of a good image.

        Raises:
            ImageError: the image cannot be registered or its part is not found.
        """
        work = ImageWork(picture)
        failed = self._run(PART_STAGES, work)
        if failed is not None:
            raise failed
        return work

    def _run(self, stages: tuple[Stage, ...], work: ImageWork) -> ImageError | None:
        """Run ``stages`` on ``work``, each timed; the error that ended them, if one did."""
        context = self._stage_context()
        for stage in stages:
            started = time.perf_counter()
            try:
                stage.run(work, context)
            except ImageError as exc:
                failed: ImageError | None = exc
            else:
                failed = None
            if stage.timing is not None:
                elapsed = (time.perf_counter() - started) * 1e3
                work.timings[stage.timing] = work.timings.get(stage.timing, 0.0) + elapsed
            if failed is not None:
                return failed
        return None


def open_pipeline(recipe: Recipe, *, device: str = "auto", backend: str = "auto") -> InspectionPipeline:
    """A recipe's pipeline, checked and ready: the recipe validated, the model loaded and
    the reference prepared, so that a problem with any of them is one error now rather
    than an ERROR per image."""
    pipeline = InspectionPipeline(recipe, device=device, backend=backend, validate=True)
    _ = pipeline.reference  # prepared now: its problems are said here
    return pipeline
