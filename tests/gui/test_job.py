"""Operate's job: named in large letters, switched only when the operator says so."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from inspector.gui.widgets.recipes import RecipesWorkspace
from inspector.recipe.io import save_recipe
from tests.gui.dialogs import answer_question
from tests.helpers import TruthSegmenter, fixtured_recipe

YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


@pytest.fixture
def two_jobs(window, tmp_path, monkeypatch):
    """Two recipes on one reference, Recipes' network a stand-in."""
    label, reference = fixtured_recipe(tmp_path)
    washer = save_recipe(replace(label, name="Washer M8"), tmp_path / "washer.yaml")
    segmenter = TruthSegmenter([reference])
    monkeypatch.setattr(RecipesWorkspace, "_segmenter", staticmethod(lambda _: segmenter))
    return label, washer


def _type(qtbot, field, text: str) -> None:
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(field, text)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def test_saving_in_recipes_never_switches_the_job_and_every_switch_is_confirmed(window, qtbot, two_jobs):
    label, washer = two_jobs
    operate, recipes, job = window.operate, window.recipes, window.operate.job
    _type(qtbot, operate.recipe_edit, str(label.source))  # no job yet: nothing to switch from
    assert job.recipe.name == "Label" and job.product.text() == "Label"
    assert job.product.font().pixelSize() >= 24  # the product, large

    # Another recipe opened and saved in Recipes is offered, not taken.
    window.tabs.setCurrentWidget(recipes)
    assert recipes.open_recipe(washer.source)
    _type(qtbot, recipes.form.min_area, "60")
    qtbot.keyClick(recipes.form.min_area, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not recipes.unsaved()
    window.tabs.setCurrentWidget(operate)
    assert job.recipe.name == "Label" and job.product.text() == "Label"
    assert job.offer_button.isVisible() and "washer.yaml" in job.offer_button.text()

    seen: list[str] = []
    answer_question(qtbot, window, NO, seen)
    qtbot.mouseClick(job.offer_button, Qt.MouseButton.LeftButton)
    assert seen == [
        "Switch the job from Label (label.yaml) to Washer M8 (washer.yaml)?\n\n"
        "The next run inspects with the new recipe."
    ]
    assert job.recipe.name == "Label" and job.offer_button.isVisible()
    answer_question(qtbot, window, YES, seen)
    qtbot.mouseClick(job.offer_button, Qt.MouseButton.LeftButton)
    assert job.recipe.name == "Washer M8" and job.product.text() == "Washer M8"
    assert not job.offer_button.isVisible()

    # Typing another recipe file asks too; declined, the field shows the job again.
    answer_question(qtbot, window, NO, seen)
    _type(qtbot, operate.recipe_edit, str(label.source))
    assert len(seen) == 3 and job.recipe.name == "Washer M8"
    assert operate.recipe_edit.text() == str(washer.source)

    # Saving the job's own recipe is no switch: no question, the new product name shows.
    window.activateWindow()  # as the window manager does once a dialog closes
    qtbot.waitUntil(window.isActiveWindow, timeout=30_000)
    window.tabs.setCurrentWidget(recipes)
    _type(qtbot, recipes.form.name, "Washer M10")
    qtbot.keyClick(recipes.form.name, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not recipes.unsaved()
    assert len(seen) == 3 and job.product.text() == "Washer M10" and not job.offer_button.isVisible()


def test_start_with_another_recipe_typed_asks_first(window, qtbot, two_jobs, monkeypatch):
    label, washer = two_jobs
    operate = window.operate
    _type(qtbot, operate.recipe_edit, str(label.source))
    qtbot.keyClicks(operate.source_edit, str(label.source.parent))
    operate.recipe_edit.setFocus()
    qtbot.keyClick(operate.recipe_edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(operate.recipe_edit, str(washer.source))  # typed, not committed
    seen: list[str] = []
    answer_question(qtbot, window, NO, seen)
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    assert len(seen) == 1 and not operate.running and operate.job.recipe.name == "Label"


def test_the_job_and_the_station_are_remembered(qtbot, tmp_path, two_jobs, window):
    from PySide6.QtCore import QSettings

    from inspector.gui.main_window import MainWindow

    _, washer = two_jobs
    _type(qtbot, window.operate.recipe_edit, str(washer.source))
    _type(qtbot, window.operate.job.station_edit, "Line 3")
    window.close()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    again = MainWindow(db_url=str(tmp_path / "results.db"), settings=settings)
    qtbot.addWidget(again)
    assert again.operate.job.recipe.name == "Washer M8" and again.operate.job.station_edit.text() == "Line 3"
    again.close()


def test_the_station_name_is_as_long_as_the_database_keeps():
    from inspector.gui.widgets.job_bar import STATION_NAME_LENGTH
    from inspector.store.models import STATION_NAME_LENGTH as STORED

    assert STATION_NAME_LENGTH == STORED
