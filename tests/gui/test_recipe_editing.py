"""Editing a recipe by typing, and saving it, on a stand-in segmenter."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

from inspector.gui.widgets.recipes import RecipesWorkspace
from inspector.recipe import load_recipe
from tests.helpers import TruthSegmenter, fixtured_recipe


@pytest.fixture
def editing(window, qtbot, tmp_path, monkeypatch):
    """The main window on the Recipes tab, its network a stand-in that counts its runs."""
    recipe, reference = fixtured_recipe(tmp_path)
    segmenter = TruthSegmenter([reference])
    monkeypatch.setattr(RecipesWorkspace, "_segmenter", staticmethod(lambda _: segmenter))
    window.tabs.setCurrentWidget(window.recipes)
    return window.recipes, recipe, segmenter


def _segmented(recipes) -> bool:
    return recipes.segmentation is not None and recipes._worker is None


def _type(qtbot, field, text: str, *, commit=Qt.Key.Key_Return) -> None:
    """Select what the field holds and type over it, as a person does, then commit."""
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(field, text)
    if commit is not None:
        qtbot.keyClick(field, commit)


def _answer_save_dialog(qtbot, owner, seen: list, typed: str | None) -> QTimer:
    """Once a save dialog is up, note the folder and name it offers, then type ``typed``
    and press Enter (None: cancel it). Waits on a timer that ends with ``owner``."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            return  # not up (yet)
        waiting.stop()
        name = dialog.findChild(QLineEdit, "fileNameEdit")
        seen.append((dialog.directory().absolutePath(), name.text()))
        if typed is None:
            dialog.reject()
            return
        name.selectAll()
        qtbot.keyClicks(name, typed)
        qtbot.keyClick(name, Qt.Key.Key_Return)

    waiting = QTimer(owner, interval=20, timeout=answer)
    waiting.start()
    return waiting


def test_a_typed_number_is_one_edit_and_segments_only_when_the_model_needs_it(editing, qtbot):
    recipes, recipe, segmenter = editing
    assert recipes.open_recipe(recipe.source)
    qtbot.waitUntil(lambda: _segmented(recipes), timeout=30_000)
    form, runs, steps = recipes.form, segmenter.calls, recipes.undo_stack.count()

    _type(qtbot, form.conf, "0.15")
    assert recipes.recipe.model.conf == 0.15 and form.conf.text() == "0.15"
    assert recipes.undo_stack.count() == steps + 1  # one step for the number, not one per key
    assert recipes.undo_stack.undoText() == "set Confidence to 0.15"
    assert (recipes.undo_action.text(), recipes.undo_action.toolTip()) == ("Undo", "Undo set Confidence to 0.15")
    qtbot.waitUntil(lambda: _segmented(recipes) and segmenter.calls > runs, timeout=30_000)
    assert segmenter.calls == runs + 1

    # A rule does not need the network: no segmentation. Leaving the field commits it.
    _type(qtbot, form.min_area, "125", commit=Qt.Key.Key_Tab)
    assert recipes.recipe.defects.min_area == 125 and recipes.undo_stack.count() == steps + 2
    assert recipes.undo_stack.undoText() == "set Min defect area (px) to 125"
    _type(qtbot, form.allowed, "2", commit=None)  # typed, not yet committed: nothing changes
    assert recipes.recipe.defects.allowed == 0 and recipes.undo_stack.count() == steps + 2
    recipes.view.setFocus()  # until the field is left
    assert recipes.recipe.defects.allowed == 2 and recipes.undo_stack.count() == steps + 3
    assert recipes._worker is None and segmenter.calls == runs + 1

    for _ in range(3):
        qtbot.keyClick(recipes.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert recipes.recipe.model.conf == recipe.model.conf and recipes.recipe.defects.min_area == 40
    assert form.conf.value() == recipe.model.conf and form.min_area.value() == 40 and form.allowed.value() == 0


def test_a_new_recipe_is_saved_as_its_product_and_keeps_its_file(editing, window, qtbot, tmp_path, monkeypatch):
    recipes, _, _ = editing
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here: the dialog opens beside the reference
    assert recipes.new_from_image(tmp_path / "ref.png")
    qtbot.waitUntil(lambda: _segmented(recipes), timeout=30_000)
    assert "not saved yet" in window.windowTitle()
    _type(qtbot, recipes.form.name, "Washer M8")
    assert recipes.recipe.name == "Washer M8" and window.isWindowModified()

    seen: list = []
    _answer_save_dialog(qtbot, window, seen, "washer")  # typed without the suffix
    qtbot.keyClick(recipes.form.name, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert seen == [(str(tmp_path), "Washer M8.yaml")]  # the product's name, beside its reference
    saved = tmp_path / "washer.yaml"
    assert load_recipe(saved).name == "Washer M8" and not (tmp_path / "washer").exists()
    assert recipes.file == saved.resolve() and not window.isWindowModified()
    assert window.windowTitle().startswith("Washer M8 (washer.yaml)")
    window.activateWindow()  # as the window manager does once a dialog closes
    qtbot.waitUntil(window.isActiveWindow, timeout=60_000)

    # A later change is saved to the same file, without asking again.
    _type(qtbot, recipes.form.min_area, "90")
    assert window.isWindowModified()
    guard = _answer_save_dialog(qtbot, window, seen, None)  # were it asked, it would be noted and cancelled
    qtbot.keyClick(recipes.form.min_area, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert load_recipe(saved).defects.min_area == 90 and not window.isWindowModified()
    recipes.view.setFocus()  # in a field, Ctrl+Z undoes the typing in it
    qtbot.keyClick(recipes.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.isWindowModified()  # the saved file no longer matches
    qtbot.keyClick(recipes.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # before the first save
    qtbot.keyClick(recipes.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert load_recipe(saved).name == "ref" and len(seen) == 1
    guard.stop()


@pytest.mark.parametrize(
    ("product", "offered"),
    [("Washer M8", "Washer M8.yaml"), ("Lid 3/4: blue", "Lid 3_4_ blue.yaml"), ("..", "recipe.yaml")],
)
def test_the_file_offered_is_the_product_without_what_a_file_name_cannot_hold(product, offered):
    from inspector.gui.widgets.recipes import _file_name

    assert _file_name(product) == offered
