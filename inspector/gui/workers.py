"""Work that must not run on the GUI thread: models, inspection runs, dry runs.

Each worker is a QThread subclass that reports through queued signals; exceptions end
up as an ``failed`` signal with a message, never in the event loop.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from inspector.errors import InspectorError

log = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InspectorError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:  # a report or picture that cannot be written
        return f"{exc.filename}: {exc.strerror or exc}"
    log.error("unexpected error in a worker:\n%s", "".join(traceback.format_exception(exc)))
    return f"Unexpected error: {exc!r} (details in the log)"


class InspectionWorker(QThread):
    """Runs the inspection loop into the store; Stop takes effect within one image.

    The recipe is checked, its pipeline built and the store opened here, not on the GUI
    thread: reading the reference image, hashing the model file and opening (or upgrading)
    the database take longer than the GUI thread may block.
    """

    result = Signal(str, object, object, object)  # frame name, InspectionResult, image (BGR) or None, prepared
    skipped = Signal(str)
    finished_run = Signal(object)  # RunSummary
    failed = Signal(str)

    def __init__(self, recipe, store_factory, source, parent=None, *, settings=None, prepare=None) -> None:
        super().__init__(parent)
        self.recipe, self.store_factory, self.source, self.settings = recipe, store_factory, source, settings
        # prepare(image, result) runs on this thread for each decoded image; what it returns
        # (pictures to show) goes out with the result, so the GUI thread only displays it.
        self.prepare = prepare
        self.cancel = threading.Event()

    def stop(self) -> None:
        self.cancel.set()

    def run(self) -> None:
        from inspector.engine.pipeline import open_pipeline
        from inspector.services.inspection_loop import RunEvents, run_inspection

        def on_result(frame, result, image) -> None:
            shown = self.prepare(image, result) if self.prepare is not None and image is not None else None
            self.result.emit(frame.name, result, image, shown)

        try:
            # Checked and prepared here: a failure is said once, not as an ERROR per image.
            # The network is the process's (shared_segmenter): it loads once.
            pipeline = open_pipeline(self.recipe)
            store = self.store_factory()
            try:
                events = RunEvents(result=on_result, skipped=lambda f: self.skipped.emit(f.name))
                summary = run_inspection(pipeline, store, self.source, self.settings, events, cancel=self.cancel)
            finally:
                store.close()
            self.finished_run.emit(summary)
        except BaseException as exc:
            self.failed.emit(_describe(exc))


class DryRunWorker(QThread):
    """Applies a recipe to a folder without storing anything (recipe tuning)."""

    result = Signal(str, object)  # path, InspectionResult
    finished_run = Signal(int)
    failed = Signal(str)

    def __init__(self, pipeline, paths: list[Path], parent=None) -> None:
        super().__init__(parent)
        self.pipeline, self.paths = pipeline, paths
        self.cancel = threading.Event()

    def stop(self) -> None:
        self.cancel.set()

    def run(self) -> None:
        count = 0
        try:
            for path in self.paths:
                if self.cancel.is_set():
                    break
                self.result.emit(str(path), self.pipeline.inspect_file(path))
                count += 1
            self.finished_run.emit(count)
        except BaseException as exc:
            self.failed.emit(_describe(exc))


class TaskWorker(QThread):
    """Runs one callable off the GUI thread (exports, other slow one-offs)."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, task, parent=None) -> None:
        super().__init__(parent)
        self._task = task

    def run(self) -> None:
        try:
            self.done.emit(self._task())
        except BaseException as exc:
            self.failed.emit(_describe(exc))


class TeachWorker(QThread):
    """Teaches a saved recipe from a folder of good images (services/teaching.py)."""

    image = Signal(int, str, str)  # images done, name, why it was left out ("" when taught)
    taught = Signal(object)  # TaughtRecipe
    failed = Signal(str)

    def __init__(self, recipe_file: str, folder: str, parent=None) -> None:
        super().__init__(parent)
        self.recipe_file, self.folder = recipe_file, folder
        self._done = 0

    def run(self) -> None:
        from inspector.services.teaching import teach_recipe

        def on_image(name: str, problem: str | None) -> None:
            self._done += 1
            self.image.emit(self._done, name, problem or "")

        try:
            self.taught.emit(teach_recipe(self.recipe_file, [self.folder], on_image=on_image))
        except BaseException as exc:
            self.failed.emit(_describe(exc))


class LatestTask(QObject):
    """Runs callables on a worker thread one at a time, the newest request winning: a
    request made while one runs replaces any other waiting, and only the last waiting
    runs next. For pictures that follow each edit or click (a preview overlay, a test
    image): the GUI thread only asks and, later, shows.

    Signals:
        done(outcome): what a task returned.
        failed(text): a task raised (said as ``TaskWorker`` says it).
    """

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._worker: TaskWorker | None = None
        self._pending = None
        self._closing = False

    @property
    def busy(self) -> bool:
        return self._worker is not None or self._pending is not None

    def request(self, task) -> None:
        self._pending = task
        if self._worker is None:
            self._start()

    def _start(self) -> None:
        task, self._pending = self._pending, None
        if task is None or self._closing:
            return
        self._worker = TaskWorker(task, self)
        self._worker.done.connect(self.done)
        self._worker.failed.connect(self.failed)
        self._worker.finished.connect(self._finished)
        self._worker.start()

    def _finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
            worker.deleteLater()
        self._start()

    def shutdown(self) -> None:
        """No new task; the one running is waited for (Qt aborts on a running thread's deletion)."""
        self._closing = True
        self._pending = None
        if self._worker is not None:
            self._worker.wait()


class _Watched:
    """A pipeline that keeps, on the thread that inspects, the last image it inspected
    and its result: the station tells the line a result without its picture, and Operate
    shows both. A live source's frames are inspected on the station's own thread, just
    before their result is told on it."""

    def __init__(self, pipeline, seen: threading.local) -> None:
        self._pipeline, self._seen = pipeline, seen

    def __getattr__(self, name: str):
        if name == "_pipeline":  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self._pipeline, name)

    def inspect(self, image, *, registration=None):
        result = self._pipeline.inspect(image, registration=registration)
        self._seen.last = (getattr(image, "pixels", image), result)
        return result

    def worker_copy(self, *, threads: int | None = None):
        return _Watched(self._pipeline.worker_copy(threads=threads), self._seen)


class StationWorker(QThread):
    """Runs a line station from its configuration file, as ``inspector serve`` does
    (``line.service.LineService``), until stopped; Stop lets the part in hand finish.

    The configuration is read, the store opened and the outputs started here, never on
    the GUI thread. ``prepare(image, result)`` runs on the station's thread for each
    inspected image, as ``InspectionWorker``'s does.
    """

    configured = Signal(object)  # the StationConfig, before any output says its state
    status = Signal(object)  # line.messages.Status
    result = Signal(object, object, object, object)  # LineResult, image or None, InspectionResult or None, prepared
    connection = Signal(str, str)  # output ("mqtt", "opcua", "camera"), its state as it says it
    stopped_station = Signal(object)  # the runs it stored (list of run ids)
    failed = Signal(str)

    def __init__(self, name: str, config_file: str, parent=None, *, prepare=None) -> None:
        super().__init__(parent)
        self.name, self.config_file, self.prepare = name, config_file, prepare
        self.cancel = threading.Event()
        self._seen = threading.local()

    def stop(self) -> None:
        self.cancel.set()

    def _pipelines(self, device: str):
        from inspector.engine import pipeline as engine

        return lambda recipe: _Watched(engine.open_pipeline(recipe, device=device), self._seen)

    def _on_result(self, sent) -> None:
        image, inspected = getattr(self._seen, "last", (None, None))
        self._seen.last = (None, None)
        reading_ms = sent.inspect_ms - inspected.total_ms if inspected is not None else -1.0
        if inspected is None or (inspected.verdict, len(inspected.findings)) != (sent.verdict, sent.defects):
            image, inspected = None, None  # a result the station made itself (a timeout): no picture
        elif reading_ms >= -0.01:  # the loop adds the image's reading to what the pipeline timed
            inspected = inspected.with_timing("read", max(reading_ms, 0.0))
        else:
            image, inspected = None, None  # not this result's picture
        shown = self.prepare(image, inspected) if self.prepare is not None and image is not None else None
        self.result.emit(sent, image, inspected, shown)

    def run(self) -> None:
        from inspector.line.config import load_config
        from inspector.line.service import LineService

        try:
            config = load_config(self.config_file)
            service = LineService(
                self.name,
                config,
                pipeline=self._pipelines(config.device),
                on_status=self.status.emit,
                on_result=self._on_result,
                on_connection=self.connection.emit,
            )
            self.configured.emit(config)
            service.start()
            try:
                self.cancel.wait()
            finally:
                service.stop()
            self.stopped_station.emit(list(service.station.runs))
        except BaseException as exc:
            self.failed.emit(_describe(exc))
