"""The window on the panels of a line: 1024x768 and 1280x1024, with long texts in it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QScrollArea, QSplitter, QWidget

from inspector.gui.widgets.operate import VERDICT_STYLE
from inspector.gui.widgets.recipes import RecipesWorkspace
from tests.helpers import TruthSegmenter, fixtured_recipe


def _clipped(window) -> list[str]:
    """Visible widgets that got less than they need, or lie partly outside the window
    (what scrolls inside a scroll area is left to it), once the layouts are done."""
    QApplication.processEvents()  # the layout requests posted by the last change
    bounds = window.rect()
    found = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.isWindow() or widget.objectName().startswith("qt_"):
            continue  # Qt's own parts of a widget (a date field's text) are placed by it
        cut_off = isinstance(widget, QScrollArea) and widget.widget().width() > widget.viewport().width()
        if cut_off and widget.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
            found.append(f"{type(widget.widget()).__name__} wider than its scroll area, which does not scroll sideways")
        scrolled = any(isinstance(p, QAbstractScrollArea) for p in _parents(widget))
        need = widget.minimumSizeHint()
        if not scrolled and need.isValid() and (widget.width() < need.width() or widget.height() < need.height()):
            found.append(
                f"{type(widget).__name__} {widget.objectName()!r} {widget.size().toTuple()} < {need.toTuple()}"
            )
        if not scrolled:
            box = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
            if not bounds.contains(box):
                found.append(f"{type(widget).__name__} {widget.objectName()!r} outside the window: {box}")
    return found


def _parents(widget):
    parent = widget.parentWidget()
    while parent is not None:
        yield parent
        parent = parent.parentWidget()


@pytest.mark.parametrize("size", [(1024, 768), (1280, 1024)])
def test_every_tab_fits_a_small_screen_whatever_the_texts(window, qtbot, tmp_path, monkeypatch, size):
    recipe, reference = fixtured_recipe(tmp_path)
    segmenter = TruthSegmenter([reference])
    monkeypatch.setattr(RecipesWorkspace, "_segmenter", staticmethod(lambda _: segmenter))
    window.resize(*size)
    operate = window.operate
    qtbot.keyClicks(operate.recipe_edit, str(recipe.source))
    qtbot.keyClick(operate.recipe_edit, Qt.Key.Key_Return)
    assert window.recipes.open_recipe(recipe.source)
    qtbot.keyClicks(operate.source_edit, str(tmp_path / ("a-folder-with-a-long-name/" * 12)))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)  # refused: a long message
    assert "no such file or folder" in window.status.text()
    qtbot.keyClicks(window.history.review_panel.operator, "An operator with a name " * 8)

    # The side panel as narrow as it goes, with each thing its tile may say.
    splitter = operate.findChild(QSplitter)
    splitter.setSizes([size[0], 1])
    for state in VERDICT_STYLE:
        operate._show_verdict(state)
        assert _clipped(window) == [], state
    operate._show_verdict("")

    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.waitUntil(lambda: window.tabs.currentWidget().isVisible(), timeout=30_000)
        hint = window.minimumSizeHint()
        assert hint.width() <= size[0] and hint.height() <= size[1], window.tabs.tabText(index)
        assert window.size().toTuple() == size  # a long message never stretches the window
        assert _clipped(window) == [], window.tabs.tabText(index)
