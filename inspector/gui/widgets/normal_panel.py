"""Normal appearance in the Recipes tab: teach the recipe from good parts, see the
scores of the taught and the tested images, and move the threshold between them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from inspector.errors import InspectorError
from inspector.gui.widgets.score_histogram import TAUGHT, ScoreHistogram
from inspector.recipe.model import Recipe


class NormalPanel(QWidget):
    """Teaching and the anomaly threshold of the open recipe.

    ``saved_recipe_file()`` gives the recipe's file once it is saved (teaching works on
    the file), or None when the user would not save it.
    """

    taught = Signal(str)  # the recipe file, saved taught
    threshold_moved = Signal(float)  # while the line is dragged: judge the tested images again
    threshold_chosen = Signal(object)  # a threshold for the recipe, or None for the taught one
    heat_map_toggled = Signal(bool)
    message = Signal(str, bool)

    def __init__(self, saved_recipe_file, parent=None) -> None:
        super().__init__(parent)
        self._saved_recipe_file = saved_recipe_file
        self._worker = None
        self._recipe: Recipe | None = None
        self._calibrated: float | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.teach_button = QPushButton("Teach from folder…")
        self.teach_button.setToolTip(
            "Learn what good parts look like from a folder of 1 to 500 images of good parts; "
            "the threshold is set from them alone"
        )
        self.teach_button.clicked.connect(self.choose_and_teach)
        self.heat_map = QCheckBox("Heat map")
        self.heat_map.setToolTip("Show how unusual each place of a tested image looks (red: above the threshold)")
        self.heat_map.setChecked(True)
        self.heat_map.toggled.connect(self.heat_map_toggled)
        self.histogram = ScoreHistogram()
        self.histogram.setToolTip(
            "Scores of the taught images (grey) and the tested ones (green good, red defective, blue unlabelled); "
            "drag the line to try another threshold"
        )
        self.histogram.threshold_moved.connect(self.threshold_moved)
        self.histogram.threshold_chosen.connect(self._offer)
        self.use_button = QPushButton("Use this threshold")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Put the threshold the line was dragged to in the recipe (one undo step)")
        self.use_button.clicked.connect(lambda: self.threshold_chosen.emit(self.histogram.threshold))
        self.reset_button = QPushButton("Taught threshold")
        self.reset_button.setToolTip("Go back to the threshold teaching calibrated")
        self.reset_button.clicked.connect(lambda: self.threshold_chosen.emit(None))
        buttons = QHBoxLayout()
        for widget in (self.teach_button, self.heat_map):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        threshold_buttons = QHBoxLayout()
        threshold_buttons.addWidget(self.use_button)
        threshold_buttons.addWidget(self.reset_button)
        threshold_buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Normal appearance</b>"))
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(self.histogram)
        layout.addLayout(threshold_buttons)
        self.show_recipe(None)

    # -- the recipe --------------------------------------------------------------------------

    def show_recipe(self, recipe: Recipe | None) -> None:
        from inspector.engine.normal_file import load_normal_model

        self._recipe = recipe
        self._calibrated = None
        scores: tuple[float, ...] = ()
        if recipe is None or not recipe.taught:
            self.status.setText(
                "Not taught: teach the recipe from a folder of good parts, and it learns what they look like."
            )
        else:
            try:
                model = load_normal_model(recipe.resolve(recipe.anomaly.model))
            except InspectorError as exc:
                self.status.setText(f"anomaly.model: {exc}")
            else:
                scores, self._calibrated = model.calibration.scores, model.threshold
                chosen = recipe.anomaly.threshold
                self.status.setText(
                    f"Taught from {model.images} good image(s); defects from: {recipe.detect}. Threshold "
                    + (f"{chosen:.4g}, set in the recipe (taught: " if chosen is not None else "")
                    + f"{model.threshold:.4g}"
                    + (")" if chosen is not None else "")
                    + f": {model.calibration.rule}."
                )
        self.histogram.set_scores(TAUGHT, scores)
        threshold = recipe.anomaly.threshold if recipe is not None and recipe.anomaly.threshold is not None else None
        self.histogram.set_threshold(threshold if threshold is not None else self._calibrated)
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Put the threshold the line was dragged to in the recipe (one undo step)")
        self.reset_button.setEnabled(threshold is not None)
        self.teach_button.setEnabled(recipe is not None and (self._worker is None or not self._worker.isRunning()))

    def set_tested(self, by_kind: dict[str, list[float]]) -> None:
        """The tested images' scores, by kind (good, defective, unlabelled)."""
        for kind, scores in by_kind.items():
            self.histogram.set_scores(kind, scores)

    def _offer(self, threshold: float) -> None:
        self.use_button.setEnabled(self._recipe is not None and self._recipe.taught)
        self.message.emit(f"Threshold {threshold:.4g}: Use this threshold puts it in the recipe", False)

    # -- teaching ----------------------------------------------------------------------------

    def choose_and_teach(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images of good parts")
        if folder:
            self.teach(folder)

    def teach(self, folder: str | Path):
        """Teach the saved recipe from ``folder`` on a worker thread; returns the worker."""
        from inspector.gui.workers import TeachWorker

        recipe_file = self._saved_recipe_file()
        if recipe_file is None:
            self.message.emit("Save the recipe first: teaching works on its file", True)
            return None
        self._worker = TeachWorker(str(recipe_file), str(folder), self)
        self._worker.image.connect(
            lambda done, name, why: self.status.setText(
                f"Teaching… {done}: {Path(name).name}" + (f" left out ({why})" if why else "")
            )
        )
        self._worker.taught.connect(self._taught)
        self._worker.failed.connect(lambda text: self._teaching_failed(text))
        self._worker.finished.connect(self._worker_finished)
        self.teach_button.setEnabled(False)
        self.status.setText(f"Teaching from {folder}…")
        self._worker.start()
        return self._worker

    def _taught(self, outcome) -> None:
        summary = outcome.to_dict()
        left = f"; {len(summary['left_out'])} left out" if summary["left_out"] else ""
        self.message.emit(
            f"Taught from {summary['taught']} good image(s) in {summary['seconds']:.1f} s{left}; "
            f"threshold {summary['threshold']:.4g}",
            False,
        )
        self.taught.emit(str(outcome.recipe.source))

    def _teaching_failed(self, text: str) -> None:
        self.message.emit(f"Not taught: {text}", True)
        self.show_recipe(self._recipe)

    def _worker_finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
            worker.deleteLater()
        self.teach_button.setEnabled(self._recipe is not None)

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.wait()  # teaching finishes: a recipe half-saved is worse than a wait
