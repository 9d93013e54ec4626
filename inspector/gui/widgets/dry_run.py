"""Test on folder: the edited recipe applied to sample images, nothing stored."""

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

from inspector.sources.files import IMAGE_SUFFIXES

VERDICT_COLOURS = {"PASS": Qt.GlobalColor.darkGreen, "FAIL": Qt.GlobalColor.red, "ERROR": Qt.GlobalColor.darkYellow}


class DryRunPanel(QWidget):
    """A PASS / FAIL table of a folder; selecting a row asks to show that image."""

    show_result = Signal(str, object)  # path, InspectionResult
    message = Signal(str, bool)

    def __init__(self, pipeline_factory, parent=None) -> None:
        super().__init__(parent)
        self._pipeline_factory = pipeline_factory
        self._worker = None
        self._results: dict[str, object] = {}
        self.button = QPushButton("Test on folder…")
        self.button.clicked.connect(self.choose_and_run)
        self.summary = QLabel("")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Image", "Verdict", "Defects / reason"])
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
        name = QTableWidgetItem(Path(path).name)
        name.setData(Qt.ItemDataRole.UserRole, path)
        verdict = QTableWidgetItem(result.verdict)
        verdict.setForeground(VERDICT_COLOURS[result.verdict])
        detail = result.error or ", ".join(f"{f.label} ({f.area:.0f} px)" for f in result.findings) or "-"
        for column, item in enumerate((name, verdict, QTableWidgetItem(detail))):
            self.table.setItem(row, column, item)
        self._update_summary()

    def _update_summary(self, *, final: bool = False) -> None:
        verdicts = [r.verdict for r in self._results.values()]
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("PASS", "FAIL", "ERROR"))
        self.summary.setText(f"{len(verdicts)} / {self._total}: {counts}" + (" (done)" if final else ""))

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            path = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
            self.show_result.emit(path, self._results[path])
