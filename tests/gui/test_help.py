"""Help where it is needed: tooltips in Recipes, a first-launch panel, kept messages."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QDoubleSpinBox, QSpinBox, QToolButton, QToolTip

from inspector.gui.widgets.recipe_form import HELP


def _hover(qtbot, widget) -> str:
    """Rest the pointer on ``widget`` and read the tooltip that comes up."""
    centre = widget.rect().center()
    qtbot.mouseMove(widget, pos=centre)
    QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, centre, widget.mapToGlobal(centre)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=10_000)
    return QToolTip.text()


def test_every_setting_and_tool_in_recipes_says_what_it_does(window, qtbot, tmp_path):
    from tests.helpers import fixtured_recipe

    recipe, _ = fixtured_recipe(tmp_path)
    window.tabs.setCurrentWidget(window.recipes)
    recipes = window.recipes
    assert recipes.open_recipe(recipe.source)
    form = recipes.form
    assert _hover(qtbot, form.conf) == HELP["model.conf"] and "0-1" in HELP["model.conf"]
    assert _hover(qtbot, form.min_area) == HELP["defects.min_area"] and "pixels" in HELP["defects.min_area"]
    for name, widget in form.fields.items():
        assert widget.toolTip() == HELP[name], name
        label = form.layout().labelForField(widget)
        assert label.toolTip() == HELP[name], name
        if isinstance(widget, QSpinBox | QDoubleSpinBox):  # a number says its unit or range
            assert re.search(r"\d|pixels", HELP[name]), name

    for button in recipes.findChildren(QToolButton):
        action = button.defaultAction()
        if action is None or not action.text():
            continue
        assert action.toolTip() and action.toolTip() != action.text().rstrip("…"), action.text()
    panels = recipes.dry_run.button, recipes.normal.teach_button, recipes.normal.use_button, recipes.normal.heat_map
    assert all(widget.toolTip() for widget in panels)
    part_box = next(b for b in recipes.findChildren(QToolButton) if b.text() == "Part box")
    assert "resize" in _hover(qtbot, part_box)

    # A field marked bad says its problem; put right, it explains itself again.
    form.min_area.setFocus()
    qtbot.keyClick(form.min_area, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(form.min_area, "90000")
    qtbot.keyClick(form.min_area, Qt.Key.Key_Return)
    assert not recipes.save_as(tmp_path / "bad.yaml")
    assert "larger than defects.max_area" in form.min_area.toolTip()
    qtbot.keyClick(form.min_area, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(form.min_area, "40")
    qtbot.keyClick(form.min_area, Qt.Key.Key_Return)
    assert recipes.save_as(tmp_path / "good.yaml")
    assert form.min_area.toolTip() == HELP["defects.min_area"]


def test_start_here_shows_on_the_first_launch_only(window, qtbot, tmp_path):
    from inspector.gui.main_window import MainWindow

    panel = window.start_here
    assert panel.isVisible()
    qtbot.mouseClick(panel.begin, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.recipes and panel.isVisible()
    qtbot.mouseClick(panel.done, Qt.MouseButton.LeftButton)
    assert not panel.isVisible()
    window.close()

    again = MainWindow(db_url=str(tmp_path / "results.db"), settings=window.settings)
    qtbot.addWidget(again)
    again.show()
    assert not again.start_here.isVisible()
    help_menu = next(a.menu() for a in again.menuBar().actions() if a.text() == "&Help")
    next(a for a in help_menu.actions() if a.text() == "Start here").trigger()
    assert again.start_here.isVisible()
    again.close()
    fresh = QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat)
    assert not fresh.value("start_here_seen", False, type=bool)  # only the window's own settings know


def test_messages_are_kept_with_their_times_and_errors_marked(window, qtbot, tmp_path):
    operate = window.operate
    window.tabs.setCurrentWidget(operate)
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)  # no recipe, no source: refused
    assert "new error" in window.tabs.tabText(window.tabs.indexOf(window.messages))
    window.tabs.setCurrentWidget(window.recipes)
    from tests.helpers import fixtured_recipe

    recipe, _ = fixtured_recipe(tmp_path)
    window.recipes.open_recipe(recipe.source)  # "Segmenting the reference image…"
    qtbot.waitUntil(lambda: "segments on the reference" in window.status.text(), timeout=60_000)

    qtbot.mouseClick(window.tabs.tabBar(), Qt.MouseButton.LeftButton, pos=_tab_centre(window, window.messages))
    assert window.tabs.currentWidget() is window.messages
    assert window.tabs.tabText(window.tabs.indexOf(window.messages)) == "Messages"
    kept = window.messages.messages()
    errors = [m for m in kept if m[1] == "Error"]
    assert errors and "Choose a recipe and a source" in errors[0][2]
    assert any(kind == "Info" and "Segmenting the reference" in text for _, kind, text in kept)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", when) for when, _, _ in kept)
    assert window.messages.table.item(0, 2).foreground().color().name() == "#c0392b"


def _tab_centre(window, widget):
    return window.tabs.tabBar().tabRect(window.tabs.indexOf(widget)).center()


def test_an_unexpected_error_is_kept_in_messages_each_time_and_asked_about_once(window, monkeypatch):
    import sys

    from PySide6.QtWidgets import QMessageBox

    from inspector.gui.app import install_excepthook

    dialogs = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: dialogs.append(args[2]))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # undone after the test
    install_excepthook(window)
    for _ in range(2):
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            sys.excepthook(*sys.exc_info())
    errors = [text for _, kind, text in window.messages.messages() if kind == "Error"]
    assert errors == ["Unexpected error: ZeroDivisionError: division by zero (the details are in the log)"] * 2
    assert len(dialogs) == 1
