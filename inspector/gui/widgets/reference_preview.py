"""What the Recipes tab draws over its reference: the prompts as markers, and what they
select as an overlay picture painted on a worker thread.

A 12-megapixel reference takes more than a second to paint (each segment's mask at full
resolution, tinted and outlined); done on the GUI thread, every click would freeze the
window that long. The markers are scene items and follow each edit at once; the painted
overlay follows when it is ready, the newest request winning.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from inspector.gui import render
from inspector.gui.widgets.image_view import BoxMarker, PointMarker, qimage_from_bgr
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


class PreviewPainter(QObject):
    """Paints ``preview_overlay`` on a worker thread, one at a time, the newest request
    winning: requests made while one is painted replace each other, and only the last
    is painted next.

    Signals:
        painted(image, status, token): the overlay as a QImage, its line, and the token
            the request came with (to tell whether it is still wanted).
        failed(text): painting failed.
    """

    painted = Signal(object, str, object)
    failed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._worker = None
        self._pending: tuple | None = None
        self._closing = False

    @property
    def busy(self) -> bool:
        return self._worker is not None or self._pending is not None

    def request(self, recipe: Recipe, segmentation, size: tuple[int, int], *, show_all: bool, token) -> None:
        self._pending = (recipe, segmentation, size, show_all, token)
        if self._worker is None:
            self._start()

    def _start(self) -> None:
        from inspector.gui.workers import TaskWorker

        if self._pending is None or self._closing:
            self._pending = None
            return
        recipe, segmentation, size, show_all, token = self._pending
        self._pending = None

        def paint():
            canvas, status = preview_overlay(recipe, segmentation, size, show_all=show_all)
            return qimage_from_bgr(canvas), status, token

        self._worker = TaskWorker(paint, self)
        self._worker.done.connect(lambda outcome: self.painted.emit(*outcome))
        self._worker.failed.connect(self.failed)
        self._worker.finished.connect(self._finished)
        self._worker.start()

    def _finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()  # "finished" comes just before the thread ends
            worker.deleteLater()
        self._start()

    def shutdown(self) -> None:
        self._closing = True
        self._pending = None
        if self._worker is not None:
            self._worker.wait()
