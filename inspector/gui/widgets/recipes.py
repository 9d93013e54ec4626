"""Recipes: author a recipe on its reference image with a live segmentation preview.

Every edit replaces the (immutable) recipe through the undo stack. The reference is
segmented in a worker thread once per model setting, as inspection segments it; prompt
edits only re-run the cheap selection on the low-resolution masks, except where the
network sees the part's window (``model.window: part``): there the part prompts place
the window, so their edits segment the window again (the whole image's segments are
kept).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from inspector.engine.image import read_image
from inspector.errors import InspectorError, RecipeError
from inspector.gui import prompt_edits
from inspector.gui.widgets import reference_preview
from inspector.gui.widgets.dry_run import DryRunPanel
from inspector.gui.widgets.image_view import ImageView
from inspector.gui.widgets.legend import Legend
from inspector.gui.widgets.normal_panel import NormalPanel
from inspector.gui.widgets.recipe_form import RecipeForm
from inspector.gui.widgets.recipes_toolbar import build_toolbar
from inspector.gui.widgets.reference_preview import markers
from inspector.gui.workers import LatestTask
from inspector.recipe.io import load_recipe, save_recipe
from inspector.recipe.model import Recipe

_PICK_RADIUS = 12  # screen-independent pixels of the image within which a click hits a prompt


class SetRecipe(QUndoCommand):
    def __init__(self, workspace: RecipesWorkspace, before: Recipe, after: Recipe, text: str) -> None:
        super().__init__(text)
        self.workspace, self.before, self.after = workspace, before, after

    def redo(self) -> None:
        self.workspace.show_recipe(self.after)

    def undo(self) -> None:
        self.workspace.show_recipe(self.before)


def _problems(error: RecipeError) -> list[str]:
    """'file: field: message' lines of a RecipeError, without the file."""
    return [line.split(": ", 1)[1] if ": " in line else line for line in str(error).splitlines()]


def _file_name(product: str) -> str:
    """``<product>.yaml``, without what a file name may not hold."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", product).strip(" .") or "recipe"
    return f"{stem}.yaml"


class RecipesWorkspace(QWidget):
    """Signals:
    message(text, is_error): for the status bar.
    recipe_saved(path): a recipe file was opened or written.
    document_changed(): the recipe, its file or whether it has unsaved edits changed.
    """

    message = Signal(str, bool)
    recipe_saved = Signal(str)
    document_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.recipe: Recipe | None = None
        self.file: Path | None = None  # where Save writes: the file opened or last saved
        self.reference: np.ndarray | None = None
        self._reference_path: Path | None = None
        self.segmentation = None
        self._segment_key: tuple | None = None
        self._whole: tuple[tuple, object] | None = None  # (model settings, whole reference's segments)
        self._worker = None
        self._closing = False
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self.document_changed)
        self.undo_stack.indexChanged.connect(self.document_changed)  # a new product name, for one

        self.view = ImageView()
        self.view.clicked.connect(self._clicked)
        self.view.dragged.connect(self._dragged)
        self.view.point_moved.connect(self._point_moved)
        self.view.box_resized.connect(self._box_resized)
        self._view_image: np.ndarray | None = None  # what the view shows, so the reference is not set again
        self.painter = LatestTask(self)  # pictures drawn off the GUI thread, the newest winning
        self.painter.done.connect(self._painted)
        self.painter.failed.connect(self._paint_failed)
        self.legend = Legend()
        self.showing = QLabel("No recipe open")
        self.form = RecipeForm()
        self.form.edited.connect(self.push)
        self.form.setEnabled(False)
        self.dry_run = DryRunPanel(self._dry_run_pipeline)
        self.dry_run.show_result.connect(self._show_test_image)
        self.dry_run.message.connect(self.message)
        self.normal = NormalPanel(self.saved_file)
        self.normal.message.connect(self.message)
        self.normal.taught.connect(self._taught)
        self.normal.threshold_chosen.connect(self._set_threshold)
        self.normal.threshold_moved.connect(lambda t: self.dry_run.rejudge(t, self.recipe))
        self.normal.heat_map_toggled.connect(lambda _: self._show_test_image(*self._test_shown))
        self.dry_run.scores_changed.connect(self.normal.set_tested)
        self._test_shown: tuple = (None, None)  # (path, result) of the test image on show

        bar = build_toolbar(self)

        left = QVBoxLayout()
        left.addWidget(self.showing)
        left.addWidget(self.view, 1)
        left.addWidget(self.legend)
        left_widget = QWidget()
        left_widget.setLayout(left)
        right = QVBoxLayout()
        right.addWidget(self.form)
        right.addWidget(self.normal)
        right.addWidget(self.dry_run, 1)
        right_widget = QWidget()
        right_widget.setLayout(right)
        right_scroll = QScrollArea()  # the settings scroll on a low screen instead of growing the window
        right_scroll.setWidget(right_widget)
        right_scroll.setWidgetResizable(True)
        split = QSplitter()
        split.addWidget(left_widget)
        split.addWidget(right_scroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(bar)
        row = QHBoxLayout()
        row.addWidget(split)
        layout.addLayout(row, 1)

    # -- documents -----------------------------------------------------------------------

    def choose_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open recipe", "recipes", "Recipes (*.yaml *.yml)")
        if path:
            self.open_recipe(path)

    def choose_new(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Reference image of a good part", "", "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff)"
        )
        if path:
            self.new_from_image(path)

    def choose_save_as(self) -> bool:
        """Ask where to save, offering the recipe's file or ``<product>.yaml``; True once saved."""
        if self.recipe is None:
            return False
        dialog = QFileDialog(self, "Save recipe as", str(self._suggested_file()))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Recipes (*.yaml *.yml)")
        dialog.setDefaultSuffix("yaml")
        dialog.selectFile(str(self._suggested_file()))
        if not dialog.exec() or not dialog.selectedFiles():
            return False
        return self.save_as(dialog.selectedFiles()[0])

    def _suggested_file(self) -> Path:
        if self.file is not None:
            return self.file
        folder = Path("recipes").resolve() if Path("recipes").is_dir() else self.recipe.reference_path.parent
        return folder / _file_name(self.recipe.name)

    def unsaved(self) -> bool:
        """Whether the recipe has edits that are not in its file."""
        return self.recipe is not None and not self.undo_stack.isClean()

    def ask_unsaved(self) -> str:
        """ "save", "discard" or "cancel": what to do with unsaved edits, asked of the user."""
        name = self.file.name if self.file is not None else self.recipe.name
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Unsaved recipe",
            f"The recipe {name} has changes that are not saved. Save them?",
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def may_discard(self) -> bool:
        """True when the current recipe may be replaced or closed: it has no unsaved
        edits, or the user saved them or chose to discard them."""
        if not self.unsaved():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save() and not self.unsaved()
        return answer == "discard"

    def open_recipe(self, path: str | os.PathLike) -> bool:
        if not self.may_discard():
            return False
        try:
            recipe = load_recipe(path)
        except RecipeError as exc:
            self.message.emit(str(exc), True)
            return False
        self._start(recipe)
        self.recipe_saved.emit(str(recipe.source))
        return True

    def new_from_image(self, path: str | os.PathLike) -> bool:
        if not self.may_discard():
            return False
        path = Path(path).resolve()
        self._start(Recipe(name=path.stem, reference_image=str(path)))
        return True

    def _start(self, recipe: Recipe) -> None:
        self.file = recipe.source
        self.undo_stack.clear()
        self.reference = None
        self.segmentation = None
        self._segment_key = None
        self.show_recipe(recipe)
        self.document_changed.emit()

    def save(self) -> bool:
        """Write the recipe to its file, asking for one the first time; True once saved."""
        if self.recipe is None:
            return False
        if self.file is None:
            return self.choose_save_as()
        return self.save_as(self.file)

    def save_as(self, path: str | os.PathLike) -> bool:
        from inspector.engine.preflight import validate_recipe

        if self.recipe is None:
            return False
        path = Path(path)
        if path.suffix.lower() not in (".yaml", ".yml"):  # Open lists only recipes with the suffix
            path = path.with_name(f"{path.name}.yaml")
        reference = self.recipe.reference_path.resolve()
        relative = os.path.relpath(reference, path.resolve().parent)
        try:
            saved = save_recipe(replace(self.recipe, reference_image=relative), path)
        except RecipeError as exc:  # a value no recipe may hold, or a file that cannot be written
            self.form.show_errors(_problems(exc))
            self.message.emit(f"Not saved: {exc}", True)
            return False
        self.recipe, self.file = saved, saved.source
        self.form.show_recipe(saved)  # later edits are made to the saved recipe
        self.undo_stack.setClean()
        self.document_changed.emit()
        self.recipe_saved.emit(str(saved.source))
        try:
            validate_recipe(saved)
        except RecipeError as exc:
            self.form.show_errors(_problems(exc))
            self.message.emit(f"Saved {path}, but it will not run yet: {exc}", True)
            return True
        self.form.show_errors([])
        self.message.emit(f"Saved {path}", False)
        return True

    # -- editing ---------------------------------------------------------------------------

    def push(self, new: Recipe, text: str) -> None:
        if self.recipe is not None and new != self.recipe:
            self.undo_stack.push(SetRecipe(self, self.recipe, new, text))

    def show_recipe(self, recipe: Recipe) -> None:
        """Make ``recipe`` current (from the undo stack or a load) and update the views."""
        self.recipe = recipe
        self.form.show_recipe(recipe)
        self.normal.show_recipe(recipe)
        # The same image however the recipe names it (absolute, or relative to its file
        # once saved) is not read and segmented again.
        reference_path = Path(os.path.normpath(recipe.reference_path))
        if self.reference is None or self._reference_path != reference_path:
            try:
                self.reference = read_image(reference_path)
            except InspectorError as exc:
                self.reference = None
                self.message.emit(f"product.reference_image: {exc}", True)
            self._reference_path = reference_path
            self.segmentation = None
            self._segment_key = None
        self.show_reference()
        self._segment_if_needed()

    @property
    def tool(self) -> str:
        return self.tools.checkedAction().data()

    def _clicked(self, x: float, y: float, button: int) -> None:
        if self.recipe is None or not self.showing_reference or self.reference is None:
            return
        height, width = self.reference.shape[:2]
        if not (0 <= x < width and 0 <= y < height):  # beside the image
            return
        # The pixel clicked (rounding could name the one past the edge).
        right = button == Qt.MouseButton.RightButton.value
        radius = _PICK_RADIUS / max(self.view.zoom_level, 1e-3)
        self._apply(prompt_edits.clicked(self.recipe, self.tool, int(x), int(y), right=right, radius=radius))

    def _dragged(self, x1: float, y1: float, x2: float, y2: float) -> None:
        if self.recipe is None or not self.showing_reference:
            return
        self._apply(prompt_edits.dragged(self.recipe, self.tool, (round(x1), round(y1), round(x2), round(y2))))

    def _point_moved(self, kind: str, index: int, x: float, y: float) -> None:
        if self.recipe is None or not self.showing_reference:
            return
        self._apply(prompt_edits.moved(self.recipe, kind, index, int(x), int(y)))

    def _box_resized(self, kind: str, index: int, x1: float, y1: float, x2: float, y2: float) -> None:
        if self.recipe is None or not self.showing_reference:
            return
        box = (round(x1), round(y1), round(x2), round(y2))
        self._apply(prompt_edits.resized(self.recipe, kind, index, box))

    def _apply(self, edit: prompt_edits.Edit) -> None:
        if edit is not None:
            self.push(*edit)
        else:
            self.refresh_overlay()  # a marker dragged to no change goes back where it was

    # -- segmentation preview ----------------------------------------------------------------

    @staticmethod
    def _segmenter(recipe: Recipe):
        """The segmenter of ``recipe``'s model, shared with every other use of it in the
        process (``shared_segmenter``): its network loads once."""
        from inspector.engine.segmenter import shared_segmenter

        return shared_segmenter(recipe.weights_spec, expected_sha256=recipe.model.sha256)

    def _segment_if_needed(self) -> None:
        from inspector.engine.reference import preview_segments, segment_everything
        from inspector.gui.workers import TaskWorker

        if self.recipe is None or self.reference is None or self._closing:
            return
        recipe, image, m = self.recipe, self.reference, self.recipe.model
        model_key = (str(self._reference_path), str(recipe.weights_spec), m.imgsz, m.conf, m.iou)
        key = (*model_key, m.window)
        if m.window == "part":  # the part prompts place the window
            key += (recipe.part.boxes, recipe.part.points, m.point_mode)
        if key == self._segment_key or (self._worker is not None and self._worker.isRunning()):
            return
        self._segment_key = key
        whole = self._whole[1] if self._whole is not None and self._whole[0] == model_key else None
        segmenter_of = self._segmenter

        def segment_reference():
            segment = segment_everything(segmenter_of(recipe), recipe)
            of_whole, as_inspected = preview_segments(recipe, image, segment, whole=whole)
            return key, model_key, of_whole, as_inspected

        self._worker = TaskWorker(segment_reference, self)
        self._worker.done.connect(self._segmented)
        self._worker.failed.connect(lambda text: self.message.emit(text, True))
        self._worker.finished.connect(self._worker_finished)
        self.message.emit("Segmenting the reference image…", False)
        self._worker.start()

    def _worker_finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
            worker.deleteLater()  # it holds the reference image
        self._segment_if_needed()  # settings may have changed meanwhile

    def _segmented(self, outcome) -> None:
        key, model_key, whole, segmentation = outcome
        self._whole = (model_key, whole)
        if key != self._segment_key:  # made for a reference or settings since replaced
            return
        self.segmentation = segmentation
        self.message.emit(
            f"{len(segmentation)} segments on the reference ({segmentation.timings.get('inference', 0):.0f} ms)", False
        )
        self.refresh_overlay()

    def refresh_overlay(self) -> None:
        """Show the prompts at once and have what they select painted off the GUI
        thread; no model run."""
        if self.recipe is not None and self.reference is None and self.showing_reference:
            self.view.set_markers([], [])
            self.showing.setText(f"Reference of {self.recipe.name}: cannot be read ({self.recipe.reference_path})")
            return
        if self.recipe is None or self.reference is None or not self.showing_reference:
            return
        self.view.set_markers(*markers(self.recipe))
        if self.segmentation is None:
            self.view.set_overlay(None)
            self.showing.setText(f"Reference of {self.recipe.name}: segmenting…")
            return
        self.showing.setText(f"Reference of {self.recipe.name}: {len(self.segmentation)} segments")
        size = (self.reference.shape[1], self.reference.shape[0])
        show_all, token = self.show_all.isChecked(), self._overlay_token()
        self.painter.request(
            reference_preview.painted(self.recipe, self.segmentation, size, show_all=show_all, token=token)
        )

    def _overlay_token(self) -> tuple:
        return (self.recipe, id(self.segmentation), self.show_all.isChecked())

    @property
    def showing_reference(self) -> bool:
        return not self.back.isEnabled()

    def show_reference(self) -> None:
        self.back.setEnabled(False)
        if self._view_image is not self.reference or self.reference is None:  # not converted again per edit
            self.view.set_image(self.reference)
            self._view_image = self.reference
        self.refresh_overlay()

    # -- test on folder ----------------------------------------------------------------------

    def _dry_run_pipeline(self):
        from inspector.engine.pipeline import InspectionPipeline

        if self.recipe is None:
            self.message.emit("Open or create a recipe first.", True)
            return None
        try:
            return InspectionPipeline(self.recipe, segmenter=self._segmenter(self.recipe))
        except InspectorError as exc:
            if isinstance(exc, RecipeError):
                self.form.show_errors(_problems(exc))
            self.message.emit(str(exc), True)
            return None

    def _show_test_image(self, path: str | None, result) -> None:
        """Show a tested image with its defects: read and drawn on a worker thread."""
        if path is None:
            return
        self._test_shown = (path, result)
        self.back.setEnabled(True)
        self.view.set_markers([], [])  # the prompts are the reference's, not editable here
        self.showing.setText(f"Test image {Path(path).name}: opening…")
        self.painter.request(reference_preview.test_image(path, result, heat_map=self.normal.heat_map.isChecked()))

    def _painted(self, outcome: tuple) -> None:
        """A picture drawn on the worker: shown when it is of what is on show now."""
        if outcome[0] == "reference":
            _, overlay, status, token = outcome
            if self.showing_reference and self.recipe is not None and token == self._overlay_token():
                self.view.set_overlay(overlay)
                self.showing.setText(f"Reference of {self.recipe.name}: {status}")
            return
        _, path, result, image, overlay = outcome
        if self.showing_reference or self._test_shown != (path, result):
            return
        self.view.set_image(image)
        self._view_image = image
        self.view.set_markers([], [])
        self.view.set_overlay(overlay)
        score = "" if result.anomaly_score is None else f", anomaly score {result.anomaly_score:.4g}"
        self.showing.setText(
            f"Test image {Path(path).name}: {result.verdict}{score}" + (f" ({result.error})" if result.error else "")
        )

    def _paint_failed(self, text: str) -> None:
        self.message.emit(text, True)
        if not self.showing_reference and self._view_image is self.reference:  # the test image never came
            self.show_reference()

    # -- normal appearance -------------------------------------------------------------------

    def saved_file(self) -> Path | None:
        """The recipe's file, saved (asking where when it has none); None if not saved."""
        if self.recipe is None:
            return None
        if (self.file is None or self.unsaved()) and not self.save():
            return None
        return self.file

    def _taught(self, recipe_file: str) -> None:
        try:
            recipe = load_recipe(recipe_file)
        except RecipeError as exc:
            self.message.emit(str(exc), True)
            return
        self._start(recipe)
        self.recipe_saved.emit(str(recipe.source))

    def _set_threshold(self, threshold: float | None) -> None:
        if self.recipe is None:
            return
        anomaly = replace(self.recipe.anomaly, threshold=threshold)
        text = "set anomaly threshold" if threshold is not None else "use the taught threshold"
        self.push(replace(self.recipe, anomaly=anomaly), text)

    def shutdown(self) -> None:
        self._closing = True  # no new segmentation once the one running has finished
        self.dry_run.stop()
        self.normal.shutdown()
        self.painter.shutdown()
        if self._worker is not None:
            self._worker.wait()  # Qt aborts the process if a running thread's object is destroyed
