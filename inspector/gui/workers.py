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
