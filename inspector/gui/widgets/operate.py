"""Operate: pick a recipe and a source, Start / Stop, watch verdicts, counters and rejects."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from inspector.engine.types import InspectionResult
from inspector.errors import InspectorError
from inspector.gui import render
from inspector.gui.widgets.counters import CountersPanel
from inspector.gui.widgets.elided import ElidedLabel
from inspector.gui.widgets.image_view import ImageView, qimage_from_bgr
from inspector.gui.widgets.job_bar import JobBar
from inspector.gui.widgets.rejects_strip import RejectsStrip
from inspector.gui.widgets.station_run import StationRun

VERDICT_STYLE = {
    "PASS": "background:#1b7f3b;color:white",
    "FAIL": "background:#c0392b;color:white",
    "ERROR": "background:#b9770e;color:white",
    "": "background:#555;color:#ddd",  # READY
    "CONNECTING": "background:#555;color:#ddd",
    "NO CAMERA": "background:#2c3e50;color:#f5b7b1",
    "RECONNECTING": "background:#7d6608;color:white",
    "STARTING": "background:#555;color:#ddd",  # a line station's states (station_run.py)
    "BUSY": "background:#1f4e79;color:white",
    "OFFLINE": "background:#2c3e50;color:#ddd",
}
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


def camera_tile(status: str, *, was_connected: bool) -> str | None:
    """What the verdict tile says of a live camera's ``status`` (as the source reports it),
    or None where the tile stays as it is: never READY while no camera delivers."""
    if status == "connected":
        return ""
    if status.startswith("reconnecting"):
        return "RECONNECTING" if was_connected else "NO CAMERA"
    if status == "ended":  # stopped: the run's end is said by the run
        return None
    return "NO CAMERA"  # gave up, or cannot be opened


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
        self._live_camera = False  # the running source is a camera or stream
        self._camera_connected = False

        self.job = JobBar()
        self.job.open_store = store_factory
        self.job.message.connect(self.message)
        self.recipe_edit = self.job.recipe_edit
        self.source_edit = QLineEdit(
            placeholderText="folder, files (a;b), video file, camera:0, rtsp://…, watch:FOLDER"
        )
        source_button = QPushButton("Folder…")
        source_button.clicked.connect(self._choose_folder)
        self.start_button = QPushButton("Start")
        self.start_button.setMinimumWidth(90)
        self.start_button.clicked.connect(self.toggle)
        self.start_button.setToolTip("Start or stop the run: F5, from anywhere in the window")
        self.inspect_again = QCheckBox("Inspect again")
        self.inspect_again.setToolTip(
            "Inspect images this recipe and model have inspected before (otherwise they are skipped)"
        )
        # Cameras only: inspect one part per trigger (button or T) instead of every frame.
        self.trigger_mode = QCheckBox("Trigger")
        self.trigger_mode.setToolTip("Camera sources: inspect one frame per trigger (T) instead of continuously")
        self.sort_files = QCheckBox("Sort")
        self.sort_files.setToolTip("Hot folders (watch:FOLDER): move each inspected file into pass/, fail/ or error/")
        self.trigger_button = QPushButton("Trigger (T)")
        self.trigger_button.setEnabled(False)
        self.trigger_button.clicked.connect(self.fire)
        QShortcut(QKeySequence(Qt.Key.Key_T), self, activated=self.fire)
        self._source_button = source_button
        self.station_run = StationRun(self, result_pictures)

        top = QHBoxLayout()
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source_edit, 1)
        for widget in (
            source_button,
            self.inspect_again,
            self.sort_files,
            self.trigger_mode,
            self.trigger_button,
            self.station_run.button,
            self.start_button,
        ):
            top.addWidget(widget)

        self.view = ImageView()
        self.verdict = QLabel("READY")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setMinimumHeight(90)
        self._show_verdict("")
        self.current = ElidedLabel(max_lines=2)
        self.source_status = ElidedLabel()
        self.status_changed.connect(self._source_said)
        self.live_frame.connect(self._show_live)
        self._last_live = 0.0
        self._overlay_until = 0.0
        self.tally = CountersPanel()
        self.tally.message.connect(self.message)
        self.tally.station = self.job.station_edit.text().strip()  # named in the shift records
        self.job.station_edit.textChanged.connect(lambda text: setattr(self.tally, "station", text.strip()))
        self.counters, self.shift_counters = self.tally.counters, self.tally.shift_counters
        side = QVBoxLayout()
        side.addWidget(self.verdict)
        side.addWidget(self.current)
        side.addWidget(self.source_status)
        side.addWidget(self.station_run.panel)
        side.addWidget(self.tally)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_scroll = QScrollArea()  # the counters stay reachable on a low screen
        side_scroll.setWidget(side_widget)
        side_scroll.setWidgetResizable(True)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widest = 0
        for state in VERDICT_STYLE:  # wide enough for whatever the tile says, with a scroll bar beside it
            self._show_verdict(state)
            widest = max(widest, side_widget.minimumSizeHint().width())
        self._show_verdict("")
        bar = side_scroll.verticalScrollBar().sizeHint().width()
        side_scroll.setMinimumWidth(widest + bar + 2 * side_scroll.frameWidth())

        self.rejects = RejectsStrip()
        self.rejects.chosen.connect(self._show_reject)

        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(side_scroll)
        split.setStretchFactor(0, 4)
        split.setCollapsible(0, False)
        split.setCollapsible(1, False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.job)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(QLabel("Recent rejects, by run (click to view)"))
        layout.addWidget(self.rejects)

    # -- set-up ------------------------------------------------------------------------

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Source folder")
        if path:
            self.source_edit.setText(path)

    @property
    def running(self) -> bool:
        """From Start until the run's end has been shown (not merely until its thread exits)."""
        return self._worker is not None or self.station_run.running

    def source_widgets(self) -> tuple[QWidget, ...]:
        """What only an inspection run uses (a station takes its source from its file)."""
        return (self.source_edit, self._source_button, self.inspect_again, self.sort_files, self.trigger_mode)

    def toggle(self) -> None:
        if self.running:
            self.stop()
        elif self.station_run.file is not None:
            self.station_run.start()
        else:
            self.start()

    def start(self) -> None:
        from inspector.gui.workers import InspectionWorker
        from inspector.services.inspection_loop import RunSettings
        from inspector.sources import CameraSource, SourceOptions, open_source

        source = self.source_edit.text().strip()
        if not self.recipe_edit.text().strip() or not source:
            self.message.emit("Choose a recipe and a source first.", True)
            return
        station = self.job.station()
        recipe = self.job.for_start() if station is not None else None  # asks where another job was typed
        if recipe is None:
            return
        options = SourceOptions(
            trigger="software" if self.trigger_mode.isChecked() else "every",
            sort=self.sort_files.isChecked(),
            on_status=self.status_changed.emit,
            preview=self._preview,
        )
        try:
            self._source = open_source(source, options)
        except InspectorError as exc:  # a mistyped folder or video file, a bad camera option
            self.message.emit(str(exc), True)
            return
        camera = isinstance(self._source, CameraSource)
        self._live_camera = camera and self._source.live
        self._camera_connected = False
        self.trigger_button.setEnabled(camera and self._source.trigger_mode == "software")
        self._show_verdict("CONNECTING" if self._live_camera else "")  # nothing of the last run stays up
        self.view.set_image(None)
        self.current.setText("")
        self.source_status.setText("")
        self.tally.start_run()
        self.rejects.start_run()
        settings = RunSettings(
            station=station, force=self.inspect_again.isChecked(), recipe_version=self.job.recipe_version
        )
        self._worker = InspectionWorker(
            recipe, self._store_factory, self._source, self, settings=settings, prepare=result_pictures
        )
        self._worker.result.connect(self._on_result)
        self._worker.skipped.connect(lambda _: self.tally.add_skipped())
        self._worker.finished_run.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.finished.connect(self._on_thread_done)
        self._worker.start()
        self.start_button.setText("Stop")
        self.job.set_running(True)
        self.inspect_again.setEnabled(False)
        again = " again, those inspected before included" if settings.force else ""
        self.message.emit(
            f"Running {recipe.name} on {source}{again} as station {station} (model loads on the first image)", False
        )
        self.running_changed.emit(True)

    def fire(self) -> None:
        """Software trigger: inspect the camera's next frame."""
        if self.running and self.trigger_button.isEnabled():
            self._source.fire()

    def stop(self) -> None:
        self.station_run.stop()
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
        self.station_run.shutdown()
        self.tally.shutdown()

    # -- results -------------------------------------------------------------------------

    def show_tile(self, text: str) -> None:
        """The verdict tile: a verdict, a station's or camera's state, "" for READY."""
        self._show_verdict(text)

    def _show_verdict(self, verdict: str) -> None:
        self.verdict.setText(verdict or "READY")
        size = 44 if verdict in ("", "PASS", "FAIL", "ERROR") else 24
        self.verdict.setStyleSheet(f"font-size:{size}px;font-weight:bold;border-radius:8px;{VERDICT_STYLE[verdict]}")

    def _source_said(self, status: str) -> None:
        """A camera's state: in the side panel, and in the tile while no camera delivers."""
        self.source_status.setText(f"Source: {status}")
        if not self.running or not self._live_camera:
            return
        tile = camera_tile(status, was_connected=self._camera_connected)
        self._camera_connected = self._camera_connected or status == "connected"
        if tile is not None:
            self._show_verdict(tile)
            if tile:
                self.view.set_image(None)  # not the last part under NO CAMERA
                self.current.setText(f"{self._source.describe()}: {status}")

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

    def show_result(self, name: str, result: InspectionResult, image, pictures) -> None:
        """A result in the tile, the pane, the counters and the rejects strip."""
        self._on_result(name, result, image, pictures)

    def _on_result(self, name: str, result: InspectionResult, image, pictures) -> None:
        self._overlay_until = time.monotonic() + RESULT_HOLD_S
        self.tally.add(result.verdict, result.total_ms)
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
                self.rejects.add(name, image, result)

    def _show_reject(self, image: np.ndarray, result: InspectionResult, caption: str) -> None:
        self.view.set_image(image)
        self.view.set_overlay(findings_overlay((image.shape[1], image.shape[0]), result))
        self._show_verdict("FAIL")
        self.current.setText(f"{caption}\n{len(result.findings)} defect(s)")

    def _on_finished(self, summary) -> None:
        self.rejects.end_run(summary.run_id)
        lost = summary.pictures_lost
        empty = summary.status == "finished" and not summary.inspected and not summary.skipped
        errors = summary.counts["ERROR"]
        all_skipped = summary.skipped and not summary.inspected
        self.message.emit(
            f"Run {summary.run_id} {summary.status}: {summary.inspected} inspected, "
            f"{summary.skipped} skipped as already inspected"
            + (" (tick Inspect again to inspect them again, or see them in History)" if all_skipped else "")
            + (f", {errors} ERROR (see History)" if errors else "")
            + ("; the source held no image files" if empty else "")
            + (f"; {lost} stored without their pictures (is the disk full?)" if lost else ""),
            bool(lost or empty or errors),
        )
        if all_skipped:
            self.current.setText(
                f"All {summary.skipped} images were inspected before: nothing new.\nTick Inspect again to inspect them."
            )

    def _on_failed(self, text: str) -> None:
        self.message.emit(text, True)

    def _on_thread_done(self) -> None:
        self._worker = None
        self.run_ended()

    def run_ended(self) -> None:
        """A run's or a station's end shown: Start again, the job and its settings free."""
        self.trigger_button.setEnabled(False)
        self.start_button.setText("Start")
        self.start_button.setEnabled(True)
        self.job.set_running(False)
        self.inspect_again.setEnabled(self.station_run.file is None)
        self.running_changed.emit(False)
