"""What the Recipes tab draws over its reference: the prompts as markers, and what they
select as an overlay picture painted on a worker thread.

A 12-megapixel reference takes more than a second to paint (each segment's mask at full
resolution, tinted and outlined); done on the GUI thread, every click would freeze the
window that long. The markers are scene items and follow each edit at once; the painted
overlay follows when it is ready, the newest request winning (``workers.LatestTask``). A
test image is read and drawn over the same way.
"""

from __future__ import annotations

from inspector.engine.image import read_image
from inspector.gui import render
from inspector.gui.widgets.image_view import BoxMarker, PointMarker, qimage_from_bgr
from inspector.gui.widgets.operate import findings_overlay
from inspector.recipe.model import Recipe


def markers(recipe: Recipe) -> tuple[list[PointMarker], list[BoxMarker]]:
    """The recipe's prompts as the image view's markers, each named for dragging."""
    boxes: list[BoxMarker] = [("ignore box", k, box, render.IGNORED) for k, box in enumerate(recipe.ignore_boxes)]
    boxes += [("part box", k, box, render.PART) for k, box in enumerate(recipe.part.boxes)]
    points: list[PointMarker] = [
        ("normal point", k, x, y, render.NORMAL) for k, (x, y) in enumerate(recipe.normal_points)
    ]
    points += [
        ("part point", k, x, y, render.PART if label == 1 else render.DEFECT)
        for k, (x, y, label) in enumerate(recipe.part.points)
    ]
    return points, boxes


def preview_overlay(recipe: Recipe, segmentation, size: tuple[int, int], *, show_all: bool):
    """The overlay (BGRA, image size) of what the prompts select, and a line saying it.

    The segments inspection compares are features where the recipe holds images against
    the reference (they are no defect where the image shows them too), and candidate
    defects where it does not (the rules would report each wherever an image shows it).
    """
    from inspector.engine.reference import preview_prompts

    canvas = render.blank(size)
    seg = segmentation
    status = f"{len(seg)} segments"
    if show_all:
        for k in range(len(seg)):
            render.tint(canvas, seg.full_mask(k), render.PALETTE[k % len(render.PALETTE)], alpha=50, outline=1)
    preview = preview_prompts(recipe, seg)
    if preview.problem:
        return canvas, f"{status}; {preview.problem}"
    if preview.part_region is not None:
        render.tint(canvas, render.region_in_image(preview.part_region, seg), render.PART, alpha=45)
    for k in preview.normal_indices:
        render.tint(canvas, seg.full_mask(k), render.NORMAL, alpha=70)
    held = recipe.defects.match_reference
    for k in preview.feature_indices:
        render.tint(canvas, seg.full_mask(k), render.FEATURE if held else render.CANDIDATE, alpha=70)
    compared = "features" if held else "candidate defects"
    status += (
        f"; part: {preview.part_segments or 'whole image'}, normal: {len(preview.normal_indices)}, "
        f"{compared}: {len(preview.feature_indices)}"
    )
    return canvas, status


def painted(recipe: Recipe, segmentation, size: tuple[int, int], *, show_all: bool, token):
    """A task for a worker thread: ``preview_overlay`` ready to show, as
    ("reference", overlay QImage, status, token)."""

    def paint():
        canvas, status = preview_overlay(recipe, segmentation, size, show_all=show_all)
        return "reference", qimage_from_bgr(canvas), status, token

    return paint


def test_image(path: str, result, *, heat_map: bool):
    """A task for a worker thread: a test image read and its findings (over its heat map)
    drawn, as ("test", path, result, image QImage, overlay QImage)."""

    def paint():
        image = read_image(path)
        size = (image.shape[1], image.shape[0])
        canvas = render.blank(size)
        if result.anomaly is not None and heat_map:
            render.heat(canvas, result.anomaly)
        overlay = findings_overlay(size, result)
        drawn = overlay[..., 3] > 0
        canvas[drawn] = overlay[drawn]
        return "test", path, result, qimage_from_bgr(image), qimage_from_bgr(canvas)

    return paint
