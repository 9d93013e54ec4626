"""Operate: pick a recipe and a source, Start / Stop, watch verdicts, counters and rejects."""

from __future__ import annotations

import time
from collections import Counter, deque
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from inspector.engine.types import InspectionResult
from inspector.errors import InspectorError
from inspector.gui import render
from inspector.gui.widgets.image_view import ImageView, qimage_from_bgr

VERDICT_STYLE = {
    "PASS": "background:#1b7f3b;color:white",
    "FAIL": "background:#c0392b;color:white",
    "ERROR": "background:#b9770e;color:white",
    "": "background:#555;color:#ddd",
}
RECENT_REJECTS = 12
LIVE_FPS = 30  # live view refresh from cameras
RESULT_HOLD_S = 0.8  # how long an inspected frame's outlines stay before the live view resumes


def findings_overlay(image_size: tuple[int, int], result: InspectionResult) -> np.ndarray:
    """The result's outlines on a transparent canvas of ``image_size`` (the shown image's)."""
    canvas = render.blank(image_size)
    findings = result.findings_at(image_size)
    render.outlines(
        canvas,
        [f.outline for f in findings],
        render.DEFECT,
        labels=[f"{f.label} {f.score:.2f}" for f in findings],
    )
    return canvas


def result_pictures(image: np.ndarray, result: InspectionResult) -> tuple[QImage, QImage]:
    """The frame and its findings overlay, ready to show; made on the inspection thread."""
    return qimage_from_bgr(image), qimage_from_bgr(findings_overlay((image.shape[1], image.shape[0]), result))


class OperateWorkspace(QWidget):
    """The operator's screen. ``store_factory`` opens the results database when a run starts."""

    message = Signal(str, bool)  # text, is_error
    running_changed = Signal(bool)
    status_changed = Signal(str)  # from the source's thread; shown in the side panel
    live_frame = Signal(object)  # newest camera frame for the live view (throttled), as a QImage

    def __init__(self, store_factory, parent=None) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self._worker = None
        self._source = None
        self._counts: Counter = Counter()
        self._latencies: deque[float] = deque(maxlen=50)
        self._started = 0.0
        self._rejects: dict[str, tuple[np.ndarray, InspectionResult]] = {}

        self.recipe_edit = QLineEdit(placeholderText="recipe .yaml")
        recipe_button = QPushButton("Recipe…")
        recipe_button.clicked.connect(self._choose_recipe)
        self.source_edit = QLineEdit(
            placeholderText="folder, files (a;b), video file, camera:0, rtsp://…, watch:FOLDER"
        )
        source_button = QPushButton("Folder…")
        source_button.clicked.connect(self._choose_folder)
        self.start_button = QPushButton("Start")
        self.start_button.setMinimumWidth(110)
        self.start_button.clicked.connect(self.toggle)
        self.start_button.setToolTip("Start or stop the run: F5, from anywhere in the window")
        # Cameras only: inspect one part per trigger (button or T) instead of every frame.
        self.trigger_mode = QCheckBox("Trigger")
        self.trigger_mode.setToolTip("Camera sources: inspect one frame per trigger (T) instead of continuously")
        self.sort_files = QCheckBox("Sort")
        self.sort_files.setToolTip("Hot folders (watch:FOLDER): move each inspected file into pass/, fail/ or error/")
        self.trigger_button = QPushButton("Trigger (T)")
        self.trigger_button.setEnabled(False)
        self.trigger_button.clicked.connect(self.fire)
        QShortcut(QKeySequence(Qt.Key.Key_T), self, activated=self.fire)

        top = QHBoxLayout()
        for widget in (
            QLabel("Recipe"),
            self.recipe_edit,
            recipe_button,
            QLabel("Source"),
            self.source_edit,
            source_button,
            self.sort_files,
            self.trigger_mode,
            self.trigger_button,
            self.start_button,
        ):
            top.addWidget(widget)

        self.view = ImageView()
        self.verdict = QLabel("READY")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setMinimumHeight(110)
        self._show_verdict("")
        self.current = QLabel("")
        self.current.setWordWrap(True)
        self.source_status = QLabel("")
        self.source_status.setWordWrap(True)
        self.status_changed.connect(self.source_status.setText)
        self.live_frame.connect(self._show_live)
        self._last_live = 0.0
        self._overlay_until = 0.0
        self.counters = {
            name: QLabel("0")
            for name in ("Inspected", "Pass", "Fail", "Error", "Yield", "Throughput", "Latency", "Skipped")
        }
        form = QFormLayout()
        for name, label in self.counters.items():
            label.setStyleSheet("font-size:16px;font-weight:bold")
            form.addRow(name, label)
        side = QVBoxLayout()
        side.addWidget(self.verdict)
        side.addWidget(self.current)
        side.addWidget(self.source_status)
        side.addLayout(form)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(240)

        self.rejects = QListWidget()
        self.rejects.setViewMode(QListWidget.ViewMode.IconMode)
        self.rejects.setIconSize(QSize(120, 90))
        self.rejects.setFlow(QListWidget.Flow.LeftToRight)
        self.rejects.setWrapping(False)
        self.rejects.setFixedHeight(130)
        self.rejects.itemClicked.connect(self._show_reject)

        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(side_widget)
        split.setStretchFactor(0, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(QLabel("Recent rejects (click to view)"))
        layout.addWidget(self.rejects)

    # -- set-up ------------------------------------------------------------------------

    def _choose_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recipe", "recipes", "Recipes (*.yaml *.yml)")
        if path:
            self.recipe_edit.setText(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Source folder")
        if path:
            self.source_edit.setText(path)

    @property
    def running(self) -> bool:
        """From Start until the run's end has been shown (not merely until its thread exits)."""
        return self._worker is not None

    def toggle(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        from inspector.gui.workers import InspectionWorker
        from inspector.recipe.io import load_recipe
        from inspector.sources import CameraSource, SourceOptions, open_source

        recipe_path, source = self.recipe_edit.text().strip(), self.source_edit.text().strip()
        if not recipe_path or not source:
            self.message.emit("Choose a recipe and a source first.", True)
            return
        try:  # only parsed here; the worker checks the rest (reference image, model file)
            recipe = load_recipe(recipe_path)
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return
        options = SourceOptions(
            trigger="software" if self.trigger_mode.isChecked() else "every",
            sort=self.sort_files.isChecked(),
            on_status=lambda status: self.status_changed.emit(f"Source: {status}"),
            preview=self._preview,
        )
        try:
            self._source = open_source(source, options)
        except InspectorError as exc:  # a mistyped video file, a bad camera option
            self.message.emit(str(exc), True)
            return
        triggered = isinstance(self._source, CameraSource) and self._source.trigger_mode == "software"
        self.trigger_button.setEnabled(triggered)
        self._show_verdict("")  # nothing of the last run stays up as if it were this one's
        self.view.set_image(None)
        self.current.setText("")
        self._counts.clear()
        self._latencies.clear()
        self._started = time.monotonic()
        self._worker = InspectionWorker(recipe, self._store_factory, self._source, self, prepare=result_pictures)
        self._worker.result.connect(self._on_result)
        self._worker.skipped.connect(self._on_skipped)
        self._worker.finished_run.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.finished.connect(self._on_thread_done)
        self._worker.start()
        self.start_button.setText("Stop")
        self.message.emit(f"Running {recipe.name} on {source} (model loads on the first image)", False)
        self.running_changed.emit(True)

    def fire(self) -> None:
        """Software trigger: inspect the camera's next frame."""
        if self.running and self.trigger_button.isEnabled():
            self._source.fire()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._source.stop()  # a live source waits for frames: wake it up
            self.start_button.setEnabled(False)
            self.message.emit("Stopping after the current image…", False)

    def shutdown(self) -> None:
        """Stop and wait (window closing)."""
        if self._worker is not None:
            self.stop()
            self._worker.wait()  # within one image: destroying a running thread aborts

    # -- results -------------------------------------------------------------------------

    def _show_verdict(self, verdict: str) -> None:
        self.verdict.setText(verdict or "READY")
        self.verdict.setStyleSheet(f"font-size:44px;font-weight:bold;border-radius:8px;{VERDICT_STYLE[verdict]}")

    def _preview(self, image: np.ndarray, index: int) -> None:
        """Grabber thread: pass on at most LIVE_FPS frames a second; the GUI never queues more."""
        now = time.monotonic()
        if now - self._last_live >= 1.0 / LIVE_FPS:
            self._last_live = now
            self.live_frame.emit(qimage_from_bgr(image))  # converted here, not on the GUI thread

    def _show_live(self, image: QImage) -> None:
        # After a verdict, its outlines stay up for a moment before the live view resumes.
        if time.monotonic() >= self._overlay_until:
            self.view.set_image(image)
            self.view.set_overlay(None)

    def _on_result(self, name: str, result: InspectionResult, image, pictures) -> None:
        self._overlay_until = time.monotonic() + RESULT_HOLD_S
        self._counts[result.verdict] += 1
        self._latencies.append(result.total_ms)
        self._show_verdict(result.verdict)
        self.current.setText(
            f"{Path(name).name}" + (f"\n{result.error}" if result.error else f"\n{len(result.findings)} defect(s)")
        )
        if image is None:  # not decoded (an ERROR): the last part's picture is not this verdict's
            self.view.set_image(None)
        else:
            picture, overlay = pictures  # from result_pictures(), on the inspection thread
            self.view.set_image(picture)
            self.view.set_overlay(overlay)
            if result.verdict == "FAIL":
                self._add_reject(name, image, result)
        self._update_counters()

    def _on_skipped(self, name: str) -> None:
        self._counts["skipped"] += 1
        self._update_counters()

    def _update_counters(self) -> None:
        c = self._counts
        inspected = c["PASS"] + c["FAIL"] + c["ERROR"]
        judged = c["PASS"] + c["FAIL"]
        elapsed = max(time.monotonic() - self._started, 1e-6)
        values = {
            "Inspected": inspected,
            "Pass": c["PASS"],
            "Fail": c["FAIL"],
            "Error": c["ERROR"],
            "Yield": f"{100 * c['PASS'] / judged:.1f} %" if judged else "-",
            "Throughput": f"{inspected / elapsed:.2f} /s",
            "Latency": f"{np.median(self._latencies):.0f} ms" if self._latencies else "-",
            "Skipped": c["skipped"],
        }
        for name, value in values.items():
            self.counters[name].setText(str(value))

    def _add_reject(self, name: str, image: np.ndarray, result: InspectionResult) -> None:
        thumb = cv2.resize(image, (120, max(1, round(image.shape[0] * 120 / image.shape[1]))))
        item = QListWidgetItem(QIcon(QPixmap.fromImage(qimage_from_bgr(thumb))), Path(name).name)
        item.setData(Qt.ItemDataRole.UserRole, name)
        self.rejects.insertItem(0, item)
        self._rejects[name] = (image, result)
        while self.rejects.count() > RECENT_REJECTS:
            old = self.rejects.takeItem(self.rejects.count() - 1)
            self._rejects.pop(old.data(Qt.ItemDataRole.UserRole), None)

    def _show_reject(self, item: QListWidgetItem) -> None:
        image, result = self._rejects[item.data(Qt.ItemDataRole.UserRole)]
        self.view.set_image(image)
        self.view.set_overlay(findings_overlay((image.shape[1], image.shape[0]), result))
        self._show_verdict("FAIL")
        self.current.setText(f"{item.text()}\n{len(result.findings)} defect(s) (from the rejects strip)")

    def _on_finished(self, summary) -> None:
        lost = summary.pictures_lost
        empty = summary.status == "finished" and not summary.inspected and not summary.skipped
        errors = summary.counts["ERROR"]
        self.message.emit(
            f"Run {summary.run_id} {summary.status}: {summary.inspected} inspected, "
            f"{summary.skipped} skipped as already inspected"
            + (f", {errors} ERROR (see History)" if errors else "")
            + ("; the source held no image files" if empty else "")
            + (f"; {lost} stored without their pictures (is the disk full?)" if lost else ""),
            bool(lost or empty or errors),
        )

    def _on_failed(self, text: str) -> None:
        self.message.emit(text, True)

    def _on_thread_done(self) -> None:
        self._worker = None
        self.trigger_button.setEnabled(False)
        self.start_button.setText("Start")
        self.start_button.setEnabled(True)
        self.running_changed.emit(False)
