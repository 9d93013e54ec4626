"""Register: the image aligned to the reference, and cut to what the network will see.

The part of inspecting that needs no network (:func:`registration_of`) may run ahead, on
other threads, while the network works on an earlier image. Registration degrades step
by step and the result says which step held (``Registration.method``):

- ``same size``: no alignment asked for, and the image is the reference's size;
- ``features`` / ``intensity``: registered by ORB features, or for a plain part by its
  edges (``engine/align.py``);
- ``outline``: a part whose features and edges do not register it, by its outline (one
  more network pass, done by the stage itself);
- ``relative position``: nothing registered it, or no alignment was asked for and the
  image has another size: recipe coordinates are mapped by their relative position in
  the frame. Pixels are then not compared with the reference's; a recipe that asked for
  alignment and checks segments against the reference FAILs such an image (``verdict``)
  rather than letting it pass unchecked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from inspector.engine.align import WORK_SIDE as ALIGN_WORK_SIDE
from inspector.engine.align import AlignmentFailed, warp_into
from inspector.engine.image import Picture, is_monochrome
from inspector.engine.reference import PreparedReference, Window, confident
from inspector.engine.regions import PartNotFound, part_outline, select_regions
from inspector.engine.stages import ImageError, ImageWork, Stage, StageContext
from inspector.recipe.model import Recipe


@dataclass(frozen=True)
class Registration:
    """An image aligned to the reference, with what the network will see of it.

    ``size`` is the image's full (width, height); ``matrix`` maps its full-size pixels
    to the reference's (None: not aligned) and ``warp`` the pixels at hand (perhaps
    decoded smaller) to the reference's; ``network_input`` is the image cut and scaled
    for the network, standing for ``original_size`` reference pixels (None: its own
    size). ``fine``: registered to about a pixel, so that its pixels can be compared
    with the reference's. ``error`` says why the image cannot be inspected;
    ``unaligned`` why its features did not register it (the outline is then tried).
    """

    size: tuple[int, int]
    matrix: np.ndarray | None
    network_input: np.ndarray | None
    original_size: tuple[int, int] | None
    align_ms: float
    fine: bool = True
    error: str | None = None
    unaligned: str | None = None
    warp: np.ndarray | None = None
    method: str = "same size"


def decode_side(recipe: Recipe, reference: PreparedReference, *, anomaly: bool | None = None) -> int | None:
    """Pixels an image needs on its longer side; None: decode every image in full.

    An aligned image is warped to what the network sees anyway, and registered at 800
    px at most: a 12-megapixel camera needs no 12-megapixel decode for that (see
    ``decode_reduced``). Not without alignment (the image is used as it is) nor with
    CLIP classes (which look at full-resolution pixels). ``anomaly``: the anomaly map's
    view needs its pixels too (default: where the recipe is taught; teaching asks for it).
    """
    if recipe.alignment.method != "orb" or recipe.defects.uses_clip:
        return None
    width, height = reference.size
    x1, y1, x2, y2 = reference.window_or_image
    # The network sees the window at imgsz: the frame, which shows what the
    # reference shows, needs that many pixels per reference pixel. The anomaly map of a
    # taught recipe sees it at ``anomaly.resolution`` on its shorter side.
    for_network = max(width, height) * recipe.model.imgsz / max(x2 - x1, y2 - y1)
    anomaly = recipe.taught if anomaly is None else anomaly
    for_anomaly = max(width, height) * recipe.anomaly.resolution / min(x2 - x1, y2 - y1) if anomaly else 0
    return int(np.ceil(max(for_network, for_anomaly, ALIGN_WORK_SIDE)))


def network_input(
    recipe: Recipe, reference: PreparedReference, image: np.ndarray, warp: np.ndarray | None
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """What the network gets for an image registered by ``warp`` (None: not aligned).

    Returns the image to segment and the (width, height) in reference pixels it stands
    for (None: its own size). The network sees at most ``imgsz`` pixels a side, so an
    aligned image is warped straight to that size (the cost follows the output), and a
    window is cut out and scaled to it.
    """
    imgsz = recipe.model.imgsz
    window: Window | None = reference.window
    if window is not None:
        x1, y1, x2, y2 = window
        if warp is None:
            return image[y1:y2, x1:x2], None
        size = (x2 - x1, y2 - y1)
        return warp_into(image, warp, reference.size, scale=imgsz / max(size), window=window), size
    if warp is None:
        return image, None
    shrink = min(1.0, imgsz / max(reference.size))
    return warp_into(image, warp, reference.size, scale=shrink), (reference.size if shrink < 1.0 else None)


def _registered(
    recipe: Recipe,
    reference: PreparedReference,
    picture: Picture,
    matrix,
    started: float,
    *,
    fine: bool = True,
    method: str = "same size",
    unaligned: str | None = None,
) -> Registration:
    # From the pixels at hand to the reference's (through the full-size image's).
    warp = None if matrix is None else matrix @ picture.to_full
    cut, original_size = network_input(recipe, reference, picture.pixels, warp)
    align_ms = (time.perf_counter() - started) * 1e3
    return Registration(
        picture.full_size,
        matrix,
        cut,
        original_size,
        align_ms,
        fine=fine,
        warp=warp,
        method=method,
        unaligned=unaligned,
    )


def by_relative_position(picture: Picture, reference: PreparedReference) -> np.ndarray:
    """The map from the image's pixels to the reference's that keeps relative positions
    (a point a third across the image is a third across the reference)."""
    (width, height), (rw, rh) = picture.full_size, reference.size
    return np.diag([rw / width, rh / height, 1.0])


def registration_of(recipe: Recipe, reference: PreparedReference, picture: Picture) -> Registration:
    """Align an image to the reference and cut out what the network will see.

    An image whose features and edges do not register it is left for the stage to
    align by its outline, which takes a network pass.
    """
    size = picture.full_size
    t = time.perf_counter()
    if reference.aligner is not None:
        try:
            alignment = reference.aligner.align(picture.pixels, full_size=size)
        except AlignmentFailed as by_features:
            return Registration(size, None, None, None, (time.perf_counter() - t) * 1e3, unaligned=str(by_features))
        return _registered(
            recipe, reference, picture, alignment.matrix, t, fine=alignment.fine, method=alignment.method
        )
    if size != reference.size or picture.reduction != 1:
        matrix = by_relative_position(picture, reference)
        return _registered(recipe, reference, picture, matrix, t, fine=False, method="relative position")
    return _registered(recipe, reference, picture, None, t)


def _align_by_outline(context: StageContext, picture: Picture) -> np.ndarray:
    """Last resort for a part that lost most of its prints: register it by its outline,
    taken from a segmentation of the whole image (one more network pass)."""
    reference, recipe = context.reference, context.recipe
    if reference.outline is None or picture.full_size != reference.size:
        raise AlignmentFailed("no outline to align by (needs part prompts and an image of the reference's size)")
    whole = confident(context.segment(picture.pixels, picture.full_size), recipe)  # in the full image's pixels
    try:
        outline = part_outline(whole, select_regions(whole, recipe))
    except PartNotFound:
        outline = None
    if outline is None:
        raise AlignmentFailed("the part prompts select nothing to align by")
    return reference.aligner.from_silhouettes(reference.outline, outline)


_NO_COLOUR = (
    "the image has no colour but the recipe's reference has (a camera set to monochrome, "
    "or every coloured part of the product missing)"
)


MIN_SIDE = 32  # pixels: a smaller image holds no part to inspect


def run(work: ImageWork, context: StageContext) -> None:
    recipe, reference = context.recipe, context.reference
    width, height = work.picture.full_size
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"a {width}x{height} image is too small to inspect (at least {MIN_SIDE} pixels a side)")
    registration = work.registration or registration_of(recipe, reference, work.picture)
    work.timings["align"] = registration.align_ms
    if registration.error:
        raise ImageError(registration.error)
    if reference.in_colour and is_monochrome(work.picture.pixels):
        raise ImageError(_NO_COLOUR)  # every coloured feature would differ from the reference: a wrong FAIL
    if registration.unaligned and registration.matrix is None:
        t = time.perf_counter()
        try:
            matrix = _align_by_outline(context, work.picture)
        except AlignmentFailed as by_outline:
            # Found but not registered: inspected by relative position (see the module's docstring).
            unaligned = f"{registration.unaligned}; {by_outline}"
            matrix, method, fine = by_relative_position(work.picture, reference), "relative position", False
        else:
            # An outline registers a part to a few pixels only (see Registration.fine).
            unaligned, method, fine = None, "outline", False
        registration = _registered(
            recipe, reference, work.picture, matrix, t, fine=fine, method=method, unaligned=unaligned
        )
        work.timings["align"] += registration.align_ms
    work.registration = registration


STAGE = Stage("register", run)
