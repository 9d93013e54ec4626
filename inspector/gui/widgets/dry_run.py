"""Test on folder: the edited recipe applied to sample images, nothing stored.

A labelled folder (MVTec AD layout, or ``good/`` beside defect-kind sub-folders) is also
measured: recall, false rejects and image AUROC, with the misses and false rejects
named. The verdicts follow a threshold being tried (``rejudge``) without running the
network again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.services.evaluation import labelled_folder
from inspector.sources.files import IMAGE_SUFFIXES

VERDICT_COLOURS = {"PASS": Qt.GlobalColor.darkGreen, "FAIL": Qt.GlobalColor.red, "ERROR": Qt.GlobalColor.darkYellow}


class DryRunPanel(QWidget):
    """A PASS / FAIL table of a folder; selecting a row asks to show that image."""

    show_result = Signal(str, object)  # path, InspectionResult
    scores_changed = Signal(object)  # the tested images' anomaly scores by kind (good, defective, unlabelled)
    message = Signal(str, bool)

    def __init__(self, pipeline_factory, parent=None) -> None:
        super().__init__(parent)
        self._pipeline_factory = pipeline_factory
        self._worker = None
        self._results: dict[str, object] = {}
        self._verdicts: dict[str, str] = {}  # as judged now (at a threshold being tried, perhaps)
        self._labels: dict[str, bool] = {}  # path: defective, for a labelled folder
        self._total = 0
        self.button = QPushButton("Test on folder…")
        self.button.setToolTip(
            "Inspect a folder of images with the recipe as it is now, saved or not, and list PASS or FAIL for "
            "each; nothing is stored. A folder labelled good/ and defective is measured too"
        )
        self.button.clicked.connect(self.choose_and_run)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Image", "Verdict", "Score", "Defects / reason"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._selected)
        top = QHBoxLayout()
        top.addWidget(self.button)
        top.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)

    def choose_and_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of sample images")
        if folder:
            self.run_folder(Path(folder))

    def run_folder(self, folder: Path) -> None:
        from inspector.gui.workers import DryRunWorker

        if self._worker is not None and self._worker.isRunning():
            self._worker.stop()
            self._worker.wait()
        pipeline = self._pipeline_factory()
        if pipeline is None:
            return
        labelled = labelled_folder(folder)
        if labelled is not None:
            paths = [image.path for image in labelled]
            self._labels = {str(image.path): image.defective for image in labelled}
        else:
            self._labels = {}
            try:
                paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as exc:  # gone since it was chosen, or not a folder
                self.message.emit(f"{folder}: cannot list the folder ({exc.strerror or exc})", True)
                return
        if not paths:
            self.message.emit(f"{folder}: no image files to test on", True)
            return
        self.table.setRowCount(0)
        self._results.clear()
        self._verdicts.clear()
        self.summary.setText(f"0 / {len(paths)}")
        self._worker = DryRunWorker(pipeline, paths, self)
        self._worker.result.connect(self._add_row)
        self._worker.finished_run.connect(lambda n: self._update_summary(final=True))
        self._worker.failed.connect(lambda text: self.message.emit(text, True))
        self._total = len(paths)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker.wait()  # within one image: destroying a running thread aborts

    def _add_row(self, path: str, result) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._results[path] = result
        self._verdicts[path] = result.verdict
        kind = {True: "defective", False: "good"}.get(self._labels.get(path), "")
        name = QTableWidgetItem(Path(path).name + (f" ({kind})" if kind else ""))
        name.setData(Qt.ItemDataRole.UserRole, path)
        verdict = QTableWidgetItem(result.verdict)
        verdict.setForeground(VERDICT_COLOURS[result.verdict])
        score = "" if result.anomaly_score is None else f"{result.anomaly_score:.4g}"
        detail = result.error or ", ".join(f"{f.label} ({f.area:.0f} px)" for f in result.findings) or "-"
        for column, item in enumerate((name, verdict, QTableWidgetItem(score), QTableWidgetItem(detail))):
            self.table.setItem(row, column, item)
        self._update_summary()
        self.scores_changed.emit(self.scores())

    def scores(self) -> dict[str, list[float]]:
        """The tested images' anomaly scores, by kind."""
        by_kind: dict[str, list[float]] = {"good": [], "defective": [], "unlabelled": []}
        for path, result in self._results.items():
            if result.anomaly_score is not None:
                label = self._labels.get(path)
                by_kind["unlabelled" if label is None else ("defective" if label else "good")].append(
                    result.anomaly_score
                )
        return by_kind

    def rejudge(self, threshold: float, recipe) -> None:
        """The verdicts at another anomaly threshold, from the results kept: no network."""
        from inspector.engine.stages.anomaly import verdict_at

        for row in range(self.table.rowCount()):
            path = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
            verdict = verdict_at(self._results[path], threshold, recipe)
            self._verdicts[path] = verdict
            item = self.table.item(row, 1)
            item.setText(verdict)
            item.setForeground(VERDICT_COLOURS[verdict])
        self._update_summary(final=self._worker is None or not self._worker.isRunning())

    def _update_summary(self, *, final: bool = False) -> None:
        verdicts = list(self._verdicts.values())
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "FAIL", "ERROR"))
        text = f"{len(verdicts)} / {self._total}: {counts}" + (" (done)" if final else "")
        if self._labels and final:
            text += "; " + self._measured()
        self.summary.setText(text)

    def _measured(self) -> str:
        """Recall, false rejects and AUROC of a labelled folder, with misses and false rejects named."""
        from inspector.services.evaluation import auroc

        rejected = {p: v != "PASS" for p, v in self._verdicts.items()}  # an ERROR is a reject, as on the line
        defective = [p for p in rejected if self._labels.get(p)]
        good = [p for p in rejected if self._labels.get(p) is False]
        misses = [Path(p).name for p in defective if not rejected[p]]
        false_rejects = [Path(p).name for p in good if rejected[p]]
        scored = [(r.anomaly_score, self._labels[p]) for p, r in self._results.items() if r.anomaly_score is not None]
        area = auroc([s for s, _ in scored], [d for _, d in scored]) if scored else None
        text = (
            f"recall {100 * (1 - len(misses) / max(1, len(defective))):.0f} % of {len(defective)} defective, "
            f"false rejects {100 * len(false_rejects) / max(1, len(good)):.0f} % of {len(good)} good"
            + ("" if area is None else f", image AUROC {area:.3f}")
        )
        if misses:
            text += "; missed: " + ", ".join(misses[:8]) + (" …" if len(misses) > 8 else "")
        if false_rejects:
            text += "; falsely rejected: " + ", ".join(false_rejects[:8]) + (" …" if len(false_rejects) > 8 else "")
        return text

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            path = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
            self.show_result.emit(path, self._results[path])
