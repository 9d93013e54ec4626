"""A recipe's defect classes: text classes and exemplars, applied to candidate defects.

Built only for recipes that name classes or exemplars, so that other recipes never load
CLIP. Exemplars are taught once, when the reference is prepared: each exemplar point
picks the smallest segment under it in its image, and the masked crops of those segments
become few-shot prototypes of their class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from inspector.engine.clip import DEFAULT_NEGATIVES, SegmentClassifier, clip_encoder, resolve_clip
from inspector.engine.image import read_image
from inspector.engine.rules import Candidate
from inspector.engine.types import Segmentation
from inspector.errors import EngineError, InspectorError
from inspector.recipe.model import Recipe


def recipe_classifier(recipe: Recipe, *, device: str = "auto", encoder=None) -> SegmentClassifier:
    """The classifier of a recipe's text classes (exemplars are added by :func:`teach_exemplars`).

    ``encoder`` replaces the recipe's CLIP model (tests use a stand-in).
    """
    if encoder is None:
        weights = resolve_clip(recipe.clip.model, recipe.clip.weights, base=recipe.folder)
        encoder = clip_encoder(weights, device=device, image_size=recipe.clip.image_size)
    rules = recipe.defects
    return SegmentClassifier(
        encoder,
        classes=rules.classes,
        # Without negatives a lone class would win every defect with probability 1.
        negatives=rules.negative_classes or DEFAULT_NEGATIVES,
        threshold=rules.class_threshold,
    )


def segment_under(segmentation: Segmentation, x: float, y: float) -> int | None:
    """Index of the smallest segment containing image point (x, y), or None."""
    (px, py) = segmentation.lowres_points(np.array([[x + 0.5, y + 0.5]]))[0].astype(int)
    hits = np.flatnonzero(segmentation.masks[:, py, px])
    if len(hits) == 0:
        return None
    areas = segmentation.masks[hits].reshape(len(hits), -1).sum(axis=1)
    return int(hits[np.argmin(areas)])


def teach_exemplars(
    classifier: SegmentClassifier,
    recipe: Recipe,
    *,
    segment: Callable[[np.ndarray], Segmentation],
    reference_image: np.ndarray,
    reference: Segmentation,
) -> None:
    """Add the recipe's exemplars to ``classifier`` as few-shot prototypes.

    Raises:
        EngineError: an exemplar image cannot be read or a point hits no segment.
    """
    origin = recipe.source or "recipe"
    by_image: dict[str | None, list[tuple[int, object]]] = {}
    for i, exemplar in enumerate(recipe.defects.exemplars):
        by_image.setdefault(exemplar.image, []).append((i, exemplar))
    embeddings: dict[tuple[str, bool], list[np.ndarray]] = {}
    for image_name, items in by_image.items():
        if image_name is None:
            image, segmentation = reference_image, reference
        else:
            try:
                image = read_image(recipe.resolve(image_name))
            except InspectorError as exc:
                raise EngineError(f"{origin}: defects.exemplars: {exc}") from None
            segmentation = segment(image)
        patches, keys = [], []
        for i, exemplar in items:
            index = segment_under(segmentation, exemplar.x, exemplar.y)
            if index is None:
                raise EngineError(
                    f"{origin}: defects.exemplars[{i}]: no segment at ({exemplar.x:g}, {exemplar.y:g}) "
                    f"in {image_name or 'the reference image'}"
                )
            patches.append(segmentation.mask_in_box(index))
            keys.append((exemplar.class_name, exemplar.label == 0))
        for key, vector in zip(keys, classifier.embed(image, patches), strict=True):
            embeddings.setdefault(key, []).append(vector)
    for (name, negative), vectors in embeddings.items():
        classifier.add_exemplars(name, np.stack(vectors), negative=negative)


def label_candidates(
    classifier: SegmentClassifier,
    image: np.ndarray,
    candidates: Sequence[Candidate],
    patches: Sequence[tuple[tuple[int, int], np.ndarray]],
) -> list[tuple[Candidate, tuple[tuple[int, int], np.ndarray]]]:
    """The candidates that stay defects, relabelled, each with its patch.

    Missing features keep their label. A segment whose best class is negative is
    dropped; one whose best class reaches the threshold takes its name and probability.
    """
    segments = [k for k, c in enumerate(candidates) if not c.missing]
    results = classifier.classify(image, [patches[k] for k in segments])
    keep = [k for k, c in enumerate(candidates) if c.missing]
    relabelled = list(candidates)
    for k, result in zip(segments, results, strict=True):
        if result.negative:
            continue
        if result.label is not None:
            relabelled[k] = replace(candidates[k], label=result.label, score=result.score)
        keep.append(k)
    return [(relabelled[k], patches[k]) for k in sorted(keep)]
