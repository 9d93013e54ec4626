"""The Recipes tab's image tools driven with the mouse, on a stand-in segmenter."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QThread
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsEllipseItem, QGraphicsItem, QGraphicsRectItem

from inspector.gui import render
from inspector.gui.widgets import reference_preview
from inspector.gui.widgets.image_view import POINT_RADIUS
from inspector.gui.widgets.recipes import RecipesWorkspace
from tests.helpers import TruthSegmenter, fixtured_recipe


@pytest.fixture
def recipes(window, qtbot, tmp_path, monkeypatch):
    """Recipes on the fixtured reference (640x480, one part box), segmented."""
    recipe, reference = fixtured_recipe(tmp_path)
    segmenter = TruthSegmenter([reference])
    monkeypatch.setattr(RecipesWorkspace, "_segmenter", staticmethod(lambda _: segmenter))
    window.tabs.setCurrentWidget(window.recipes)
    workspace = window.recipes
    assert workspace.open_recipe(recipe.source)
    qtbot.waitUntil(lambda: workspace.segmentation is not None and not workspace.painter.busy, timeout=60_000)
    return workspace


def _tool(recipes, name: str) -> None:
    for action in recipes.tools.actions():
        if action.data() == name:
            action.trigger()


def _on_screen(view, x: float, y: float) -> QPoint:
    return view.mapFromScene(x, y)


def _wheel(view, at: QPoint, steps: int) -> None:
    """Turn the wheel ``steps`` notches (positive: away, zoom in) with the cursor at ``at``."""
    for _ in range(abs(steps)):
        event = QWheelEvent(
            QPointF(at),
            QPointF(view.viewport().mapToGlobal(at)),
            QPoint(0, 0),
            QPoint(0, 120 if steps > 0 else -120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(view.viewport(), event)


def _drag(qtbot, view, start: QPoint, end: QPoint) -> None:
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, pos=(start + end) / 2)
    qtbot.mouseMove(viewport, pos=end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


def _screen_size(view, item) -> float:
    """How wide ``item`` is drawn on screen, in pixels."""
    return item.deviceTransform(view.viewportTransform()).mapRect(item.boundingRect()).width()


def _frame(view) -> QGraphicsRectItem:
    """The part box's frame (not one of its corner handles, which keep their size)."""
    ignores = QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations
    return next(i for i in view.markers if isinstance(i, QGraphicsRectItem) and not i.flags() & ignores)


def test_the_wheel_zooms_around_the_cursor_not_the_last_click(recipes, qtbot):
    view = recipes.view
    _tool(recipes, "erase")  # a click that changes nothing
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_on_screen(view, 100, 100))
    cursor = _on_screen(view, 360, 270)
    under_cursor = view.mapToScene(cursor)
    zoom = view.zoom_level
    _wheel(view, cursor, 4)
    assert view.zoom_level == pytest.approx(zoom * 1.25**4)
    after = view.mapToScene(cursor)
    assert abs(after.x() - under_cursor.x()) <= 1 and abs(after.y() - under_cursor.y()) <= 1

    # Elsewhere, out again: the new place under the cursor stays.
    cursor = _on_screen(view, 330, 250)
    under_cursor = view.mapToScene(cursor)
    _wheel(view, cursor, -2)
    after = view.mapToScene(cursor)
    assert abs(after.x() - under_cursor.x()) <= 1 and abs(after.y() - under_cursor.y()) <= 1


def test_prompt_markers_keep_their_size_on_screen_at_every_zoom(recipes, qtbot):
    view = recipes.view
    _tool(recipes, "normal point")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_on_screen(view, 320, 240))
    assert len(recipes.recipe.normal_points) == 1
    sizes = []
    for zoom_in in (0, 3, 3, -8):
        _wheel(view, _on_screen(view, 320, 240), zoom_in)
        (dot,) = [item for item in view.markers if isinstance(item, QGraphicsEllipseItem)]
        frame = _frame(view)
        sizes.append((round(_screen_size(view, dot)), frame.pen().isCosmetic()))
    assert len({s for s, _ in sizes}) == 1, sizes  # the same on screen however far zoomed
    assert sizes[0][0] == pytest.approx(2 * POINT_RADIUS + 2, abs=2) and all(c for _, c in sizes)


def test_a_point_is_dragged_and_a_box_resized_each_as_one_undo_step(recipes, qtbot):
    view = recipes.view
    steps = recipes.undo_stack.count()
    x1, y1, x2, y2 = recipes.recipe.part.boxes[0]

    # The part box tool is chosen, yet a press on the box's corner resizes it.
    _drag(qtbot, view, _on_screen(view, x2, y2), _on_screen(view, x2 + 30, y2 + 20))
    (resized,) = recipes.recipe.part.boxes
    assert resized[:2] == (round(x1), round(y1))
    assert abs(resized[2] - (x2 + 30)) <= 1 and abs(resized[3] - (y2 + 20)) <= 1
    assert recipes.undo_stack.count() == steps + 1 and recipes.undo_stack.undoText() == "resize part box"

    _tool(recipes, "normal point")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_on_screen(view, 300, 250))
    (placed,) = recipes.recipe.normal_points
    _drag(qtbot, view, _on_screen(view, placed[0] + 0.5, placed[1] + 0.5), _on_screen(view, 340, 200))
    (moved,) = recipes.recipe.normal_points
    assert abs(moved[0] - 340) <= 1 and abs(moved[1] - 200) <= 1
    assert recipes.undo_stack.count() == steps + 3 and recipes.undo_stack.undoText() == "move normal point"

    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert recipes.recipe.normal_points == (placed,)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert recipes.recipe.part.boxes == ((x1, y1, x2, y2),) and recipes.recipe.normal_points == ()

    # A corner dragged onto its opposite corner leaves the box as it was, marker included.
    _tool(recipes, "part box")
    _drag(qtbot, view, _on_screen(view, x2, y2), _on_screen(view, x1 + 1, y1 + 1))
    assert recipes.recipe.part.boxes == ((x1, y1, x2, y2),)
    frame = _frame(view)
    assert frame.rect().right() == pytest.approx(x2) and frame.rect().bottom() == pytest.approx(y2)


def test_the_overlay_is_painted_off_the_gui_thread_and_a_click_answers_at_once(recipes, qtbot, monkeypatch):
    painted_on, hold = [], threading.Event()
    paint = reference_preview.preview_overlay

    def held(*args, **kwargs):
        painted_on.append(QThread.currentThread())
        hold.wait(60)  # until the test has seen the click answered
        return paint(*args, **kwargs)

    monkeypatch.setattr(reference_preview, "preview_overlay", held)
    view = recipes.view
    _tool(recipes, "part point")
    try:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_on_screen(view, 320, 240))
        # The click is answered while the overlay is still being painted: the point is
        # in the recipe, in the undo list and on the image.
        assert len(recipes.recipe.part.points) == 1 and recipes.undo_stack.undoText() == "add foreground point"
        assert any(isinstance(item, QGraphicsEllipseItem) for item in view.markers)
        qtbot.waitUntil(lambda: bool(painted_on), timeout=60_000)
        assert recipes.painter.busy
    finally:
        hold.set()
    qtbot.waitUntil(lambda: not recipes.painter.busy, timeout=60_000)
    assert painted_on and all(t is not QApplication.instance().thread() for t in painted_on)
    assert "part: " in recipes.showing.text()


def _colours(image: QImage) -> set[tuple[int, int, int]]:
    """The opaque colours (BGR) of an overlay: its outlines."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    pixels = np.frombuffer(rgba.constBits(), np.uint8).reshape(rgba.height(), rgba.bytesPerLine())
    pixels = pixels[:, : 4 * rgba.width()].reshape(rgba.height(), rgba.width(), 4)
    opaque = pixels[pixels[..., 3] == 255]
    return {(int(b), int(g), int(r)) for r, g, b, _ in opaque}


def test_features_and_candidate_defects_have_their_own_colours_and_a_legend(recipes, qtbot):
    assert recipes.recipe.defects.match_reference
    assert render.FEATURE != render.CANDIDATE
    assert render.FEATURE in _colours(recipes.view.overlay) and "features: " in recipes.showing.text()
    assert render.CANDIDATE not in _colours(recipes.view.overlay)
    legend = recipes.legend.labels
    assert {"Feature", "Candidate defect"} <= set(legend)
    assert "held against each image" in legend["Feature"].toolTip()
    assert "report" in legend["Candidate defect"].toolTip()

    # Segments no longer held against the reference are what the rules would report.
    form = recipes.form
    qtbot.mouseClick(form.match_reference, Qt.MouseButton.LeftButton, pos=form.match_reference.rect().center())
    assert not recipes.recipe.defects.match_reference
    qtbot.waitUntil(lambda: "candidate defects: " in recipes.showing.text(), timeout=60_000)
    colours = _colours(recipes.view.overlay)
    assert render.CANDIDATE in colours and render.FEATURE not in colours


def test_a_tested_image_is_read_and_drawn_off_the_gui_thread(recipes, qtbot, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "tested"
    folder.mkdir()
    shutil.copy(recipes.recipe.reference_path, folder / "good.png")  # the stand-in knows this picture
    read_on = []
    read = reference_preview.read_image

    def noted(path):
        read_on.append(QThread.currentThread())
        return read(path)

    monkeypatch.setattr(reference_preview, "read_image", noted)
    recipes.dry_run.run_folder(folder)
    qtbot.waitUntil(lambda: "(done)" in recipes.dry_run.summary.text(), timeout=60_000)
    table = recipes.dry_run.table
    row = table.visualItemRect(table.item(0, 0)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=row)
    assert recipes.back.isEnabled() and not recipes.view.markers  # the prompts belong to the reference
    qtbot.waitUntil(lambda: "good.png: PASS" in recipes.showing.text(), timeout=60_000)
    assert read_on and all(t is not QApplication.instance().thread() for t in read_on)
    assert recipes.view.image_size == (640, 480)

    recipes.back.trigger()
    assert recipes.view.markers  # back on the reference, its prompts with it
    qtbot.waitUntil(lambda: "part: " in recipes.showing.text(), timeout=60_000)
