"""The golden part, prepared once per recipe: what every inspected image is held against.

:func:`prepare_reference` segments the reference image, applies the part prompts, cuts
the window the network sees (``model.window: part``), builds the registration to it and
picks the features a good part shows. The pipeline does it once, before its first
image; the Recipes tab's preview calls the same function, so what an engineer sees on
the reference is what inspection uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from inspector.engine.align import ReferenceAligner
from inspector.engine.image import colour_share
from inspector.engine.regions import (
    PartNotFound,
    Regions,
    defect_candidates,
    part_outline,
    part_window,
    select_regions,
)
from inspector.engine.rules import expected_features
from inspector.engine.segmenter import Segmenter
from inspector.engine.types import Segmentation
from inspector.recipe.model import Recipe

# Segments are kept down to this fraction of the recipe's confidence, for matching only
# (hysteresis): a print the model segments at 0.12 in one image and 0.08 in the next is
# still recognised as the reference's print, and still counts as present; defects and
# prompts use the recipe's confidence itself.
MATCH_CONF_RATIO = 0.5

# A reference with colour on this share of its pixels or more is "in colour": a
# monochrome image of its part would differ from it everywhere there is colour.
_COLOUR_SHARE = 0.01

Window = tuple[int, int, int, int]  # x1, y1, x2, y2 in reference pixels

# Every segment of an image, down to the matching confidence, most confident first; the
# optional (width, height) is the size of the image it was shrunk from (see
# ``Segmenter.segment``).
SegmentFn = Callable[[np.ndarray, "tuple[int, int] | None"], Segmentation]


def segment_everything(segmenter: Segmenter, recipe: Recipe) -> SegmentFn:
    """How a recipe segments an image with ``segmenter``: everything down to the matching
    confidence (see ``MATCH_CONF_RATIO``), most confident first."""
    m = recipe.model

    def segment(image: np.ndarray, original_size: tuple[int, int] | None = None) -> Segmentation:
        extra = {"original_size": original_size} if original_size is not None else {}
        return segmenter.segment(image, imgsz=m.imgsz, conf=m.conf * MATCH_CONF_RATIO, iou=m.iou, **extra).ranked()

    return segment


def confident(segmentation: Segmentation, recipe: Recipe) -> Segmentation:
    """The segments at the recipe's confidence: what prompts select and defects come from
    (the head of a ranked segmentation)."""
    return segmentation.head(int((segmentation.scores >= recipe.model.conf).sum()))


def placed(segmentation: Segmentation, window: Window | None, size: tuple[int, int]) -> Segmentation:
    """A segmentation of ``window`` (None: of the whole image) in the pixels of an image of ``size``."""
    return segmentation if window is None else segmentation.placed(window[:2], size)


@dataclass(frozen=True)
class PreparedReference:
    """The reference image and everything inspection derives from it once.

    Attributes:
        image: the reference image (BGR).
        segmentation: every segment down to the matching confidence as inspection sees
            the reference (in the window with ``model.window: part``), in image pixels.
        regions: what the prompts select in it.
        features: indices (into ``segmentation``, whose confident head they lie in) of
            the features a good part shows.
        aligner: registers images to it (None without alignment).
        window: what the network sees, in reference pixels (None: the whole image).
        outline: the part's silhouette on the whole image (low-res bool; None without
            part segments), to register a part by when its prints are gone.
        view: the reference as the network saw it (the window, or all of it).
        in_colour: whether it has colour a monochrome image would lack.
    """

    image: np.ndarray
    segmentation: Segmentation
    regions: Regions
    features: np.ndarray
    aligner: ReferenceAligner | None
    window: Window | None
    outline: np.ndarray | None
    view: np.ndarray
    in_colour: bool
    _views: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the reference image."""
        return self.image.shape[1], self.image.shape[0]

    @property
    def window_or_image(self) -> Window:
        return self.window or (0, 0, *self.size)

    def view_at(self, size: tuple[int, int]) -> np.ndarray:
        """The reference as the network saw it, at ``size`` (width, height): made once per
        size, since a full-size reference takes milliseconds to shrink."""
        view = self._views.get(size)
        if view is None:
            view = self._views[size] = cv2.resize(self.view, size, interpolation=cv2.INTER_AREA)
        return view


def prepare_reference(
    recipe: Recipe,
    image: np.ndarray,
    segment: SegmentFn,
    *,
    whole: Segmentation | None = None,
    register: bool = True,
) -> PreparedReference:
    """Segment the reference image and derive what inspection holds images against.

    Args:
        recipe: the recipe (its prompts are in ``image``'s pixels).
        image: the reference image.
        segment: how the recipe segments an image (:func:`segment_everything`).
        whole: the whole image's segmentation by ``segment``, when already made (the
            preview keeps it while only the prompts change).
        register: build the aligner when the recipe registers images.

    Raises:
        PartNotFound: the part prompts select nothing on the reference.
    """
    everything = whole if whole is not None else segment(image, None)
    whole_confident = confident(everything, recipe)
    regions = select_regions(whole_confident, recipe)
    aligner = (
        _aligner(recipe, image, whole_confident, regions) if register and recipe.alignment.method == "orb" else None
    )
    outline = part_outline(whole_confident, regions)
    window, view = None, image
    size = (image.shape[1], image.shape[0])
    if recipe.model.window == "part":
        window = part_window(whole_confident, regions.part_region, recipe.part.boxes)
        x1, y1, x2, y2 = window
        view = image[y1:y2, x1:x2]
        everything = placed(segment(view, None), window, size)
        regions = select_regions(confident(everything, recipe), recipe)
    segmentation = confident(everything, recipe)
    rules = recipe.defects
    features = np.zeros(0, np.int64)
    if rules.missing_features:
        features = expected_features(
            segmentation.masks,
            part_region=regions.part_region,
            part_indices=regions.part_indices,
            rules=rules,
            pixel_area=1.0 / segmentation.scale**2,
        )
    return PreparedReference(
        image=image,
        segmentation=everything,
        regions=regions,
        features=features,
        aligner=aligner,
        window=window,
        outline=outline,
        view=view,
        in_colour=colour_share(image) >= _COLOUR_SHARE,
    )


def preview_segments(
    recipe: Recipe, image: np.ndarray, segment: SegmentFn, *, whole: Segmentation | None = None
) -> tuple[Segmentation, Segmentation]:
    """A reference's segments as inspection gets them, for the Recipes tab: (the whole
    image's segmentation by ``segment``, to keep while only prompts change; the segments
    at the recipe's confidence as inspection sees them).

    Where the part prompts select nothing (or not yet), or a prompt is off the image,
    there is no window: the whole image's segments.
    """
    whole = whole if whole is not None else segment(image, None)
    try:
        prepared = prepare_reference(recipe, image, segment, whole=whole, register=False)
    except (PartNotFound, ValueError):
        return whole, confident(whole, recipe)
    return whole, confident(prepared.segmentation, recipe)


def _aligner(recipe: Recipe, image: np.ndarray, whole: Segmentation, regions: Regions) -> ReferenceAligner:
    # Features come from the part: its segment and the recipe's part boxes (which
    # still hold when the segment is imperfect).
    region = cv2.resize(regions.part_region.astype(np.uint8), whole.image_size, interpolation=cv2.INTER_NEAREST) > 0
    if len(regions.part_indices) == 0:
        region[:] = True
    for x1, y1, x2, y2 in recipe.part.boxes:
        region[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
    return ReferenceAligner(
        image,
        region=region,
        max_features=recipe.alignment.max_features,
        min_inliers=recipe.alignment.min_inliers,
    )


@dataclass(frozen=True)
class PromptPreview:
    """What a recipe's prompts select on its reference, for the Recipes tab to draw.

    Attributes:
        part_region: where defects are searched (low-res bool on the segmentation's
            grid); None when the recipe has no part prompts (the whole image).
        part_segments: how many segments the part prompts select.
        normal_indices: segments the normal points mark as normal surface.
        feature_indices: segments on the part that inspection would hold images
            against: the features a good part shows (what would be a defect if an
            image had it and the reference did not).
        problem: why the prompts select nothing (None when they do).
    """

    part_region: np.ndarray | None
    part_segments: int
    normal_indices: tuple[int, ...]
    feature_indices: tuple[int, ...]
    problem: str | None = None


def preview_prompts(recipe: Recipe, segmentation: Segmentation) -> PromptPreview:
    """The recipe's prompts applied to the reference's segments (from
    :func:`preview_segments`): no network run, so it follows every edit at once."""
    try:
        regions = select_regions(segmentation, recipe)
    except PartNotFound:
        return PromptPreview(None, 0, (), (), "the part prompts select nothing")
    except ValueError as exc:  # e.g. a prompt outside a reference image since replaced
        return PromptPreview(None, 0, (), (), str(exc))
    # On the reference itself every feature matches itself: the rules without the
    # reference say which segments inspection compares.
    rules = replace(recipe.defects, match_reference=False, missing_features=False)
    features = defect_candidates(segmentation, regions, rules)
    has_part = bool(recipe.part.boxes or recipe.part.points)
    return PromptPreview(
        regions.part_region if has_part else None,
        len(regions.part_indices),
        tuple(sorted(regions.normal_indices)),
        tuple(c.index for c in features),
    )
