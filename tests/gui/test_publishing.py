"""Publishing a recipe from Recipes and taking Operate's job from a published version."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog, QLineEdit, QMessageBox

from inspector.gui.publishing import PublishDialog
from inspector.gui.widgets.recipes import RecipesWorkspace
from tests.gui.dialogs import answer_question
from tests.helpers import TruthSegmenter, fixtured_recipe, rows


@pytest.fixture
def label(window, tmp_path, monkeypatch):
    recipe, reference = fixtured_recipe(tmp_path / "src")
    segmenter = TruthSegmenter([reference])
    monkeypatch.setattr(RecipesWorkspace, "_segmenter", staticmethod(lambda _: segmenter))
    return recipe


def _when_up(qtbot, owner, kind, act) -> QTimer:
    """Once a modal dialog of ``kind`` is up, ``act`` on it as a person would."""

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind):
            waiting.stop()
            act(dialog)

    waiting = QTimer(owner, interval=20, timeout=look)
    waiting.start()
    return waiting


def _menu_action(window, text: str):
    (action,) = [a for a in window.menuBar().actions()[0].menu().actions() if a.text() == text]
    return action


def test_a_recipe_is_published_from_recipes_and_operate_takes_it_as_the_job(window, qtbot, label, tmp_path):
    assert window.recipes.open_recipe(label.source)

    def fill(dialog: PublishDialog) -> None:
        dialog.by.selectAll()
        qtbot.keyClicks(dialog.by, "ana")
        qtbot.keyClicks(dialog.note, "first version")
        qtbot.keyClick(dialog.note, Qt.Key.Key_Return)

    _when_up(qtbot, window, PublishDialog, fill)
    _menu_action(window, "Publish recipe…").trigger()
    qtbot.waitUntil(lambda: "published as version 1" in window.status.text(), timeout=60_000)
    db = tmp_path / "results.db"
    assert rows(db, "SELECT product, version, published_by, note FROM published_recipes") == [
        ("Label", 1, "ana", "first version")
    ]

    def pick(dialog: QInputDialog) -> None:
        assert dialog.comboBoxItems() == ["Label v1 by ana: first version"]
        qtbot.keyClick(dialog.findChild(QLineEdit) or dialog, Qt.Key.Key_Return)

    window.tabs.setCurrentWidget(window.operate)
    job = window.operate.job
    _when_up(qtbot, window, QInputDialog, pick)
    seen: list[str] = []
    if job.recipe is not None:  # another job: the switch is asked, as any other
        answer_question(qtbot, window, QMessageBox.StandardButton.Yes, seen)
    qtbot.mouseClick(job.published_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.recipe_version == 1, timeout=60_000)
    assert job.product.text() == "Label" and "published" in str(job.recipe.source)


def test_publishing_is_said_when_nothing_is_open(window, qtbot):
    def cancel(dialog: QDialog) -> None:  # a save dialog for an empty workspace must not appear
        dialog.reject()

    _when_up(qtbot, window, QDialog, cancel)
    _menu_action(window, "Publish recipe…").trigger()
    assert "Open or make a recipe in Recipes to publish it." in window.status.text()
