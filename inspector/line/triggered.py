"""Sources for a station that runs for days and switches recipes: frames taken on a
trigger (the next file of a folder, or a camera's next frame), and any live source kept
open across the runs that a recipe switch starts.

Both are ``FrameSource`` objects whose ``frames()`` may be called again after
:meth:`end_run` ended the previous call: one run per recipe, one source for the station.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from inspector.engine.image import read_bytes
from inspector.errors import SourceError
from inspector.sources import CameraSource, FrameSource
from inspector.sources.files import IMAGE_SUFFIXES
from inspector.sources.frame import Frame
from inspector.sources.hotfolder import SORT_FOLDERS

log = logging.getLogger(__name__)

_END = object()  # what wakes a run's frames() to end it


class Capture(Protocol):
    """Takes one part's image when triggered."""

    def take(self, tag: str, timeout: float) -> Frame:
        """The part's frame, or a frame with ``error`` saying why there is none (it
        becomes an ERROR result: never an exception, never a hang past ``timeout``)."""
        ...

    def describe(self) -> str: ...

    def destination(self, frame: Frame, verdict: str) -> Path | None: ...

    def relocate(self, frame: Frame, destination: Path) -> None: ...

    def close(self) -> None: ...


class FolderCapture:
    """Each trigger takes the next image file of ``folder`` (in name order), one the
    camera or another program has written there; files taken are not taken again, and
    with ``sort`` move into pass/, fail/ or error/ once their result is stored."""

    def __init__(self, folder: str | os.PathLike, *, sort: bool = False) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SourceError(f"{self.folder}: is a file, not a folder to take images from")
        self.sort = sort
        self._taken: set[tuple[str, int, int]] = set()
        self._waiting: deque[str] = deque()

    def describe(self) -> str:
        return f"trigger:folder:{self.folder}"

    def _look(self) -> None:
        """List the folder's images not taken yet, by name: what the next triggers take
        (looked at again only once they are used up, so a folder of thousands of images
        is not listed on every trigger)."""
        try:
            entries = [e for e in os.scandir(self.folder) if e.is_file(follow_symlinks=False)]
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SourceError(f"{self.folder}: cannot list the folder ({exc.strerror or exc})") from None
        names = sorted(e.name for e in entries if Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
        self._waiting = deque(names)

    def _next(self) -> tuple[Path, tuple[str, int, int]] | None:
        if not self._waiting:
            self._look()
        while self._waiting:
            path = self.folder / self._waiting.popleft()
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # taken away meanwhile
            key = (path.name, stat.st_size, stat.st_mtime_ns)
            if stat.st_size and key not in self._taken:
                return path, key
        return None

    def take(self, tag: str, timeout: float) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = self._next()
            except SourceError as exc:
                return Frame(name=f"trigger {tag}", error=str(exc))
            if found is not None:
                break
            if time.monotonic() >= deadline:
                return Frame(name=f"trigger {tag}", error=f"no image waiting in {self.folder} within {timeout:g} s")
            time.sleep(0.02)
        path, key = found
        self._taken.add(key)
        try:
            data = read_bytes(path)
        except SourceError as exc:
            return Frame(name=str(path), path=path, error=str(exc))
        return Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        if not self.sort or frame.path is None:
            return None
        target = self.folder / SORT_FOLDERS[verdict] / frame.path.name
        if target.exists():
            target = target.with_name(f"{frame.path.stem}_{(frame.sha256 or 'x')[:12]}{frame.path.suffix}")
        return target

    def relocate(self, frame: Frame, destination: Path) -> None:
        if frame.path is None or not frame.path.exists():
            return
        destination.parent.mkdir(exist_ok=True)
        shutil.move(str(frame.path), destination)

    def close(self) -> None:
        pass


class CameraCapture:
    """Each trigger takes the camera's next frame (a software trigger of ``CameraSource``,
    which keeps the camera open, reconnecting when it drops)."""

    def __init__(self, camera: CameraSource) -> None:
        self.camera = camera
        self._frames: queue.Queue[Frame] = queue.Queue()
        self._wanted: str | None = None
        self._lock = threading.Lock()
        self._grabber = threading.Thread(target=self._pump, name="inspector-capture", daemon=True)
        self._grabber.start()

    def describe(self) -> str:
        return f"trigger:{self.camera.describe()}"

    def _pump(self) -> None:
        try:
            for frame in self.camera.frames():
                with self._lock:
                    if self._wanted is not None:  # a frame nobody waits for (after a timeout) is dropped
                        self._frames.put(frame)
                        self._wanted = None
        except SourceError as exc:
            log.warning("%s: %s", self.camera.describe(), exc)

    def take(self, tag: str, timeout: float) -> Frame:
        with self._lock:
            while not self._frames.empty():
                self._frames.get_nowait()
            self._wanted = tag
        self.camera.fire()
        try:
            return self._frames.get(timeout=timeout)
        except queue.Empty:
            with self._lock:
                self._wanted = None
            why = self.camera.status if self.camera.status not in ("idle", "connected") else "no frame"
            return Frame(name=f"{self.camera.describe()} trigger {tag}", error=f"{why} within {timeout:g} s")

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        return None

    def relocate(self, frame: Frame, destination: Path) -> None:
        pass

    def close(self) -> None:
        self.camera.stop()
        self._grabber.join(timeout=5)


class TriggeredSource:
    """Frames that come from triggers: :meth:`fire` takes one part through ``capture``.

    Args:
        capture: how a part's image is taken.
        timeout: seconds the capture may take before the part is an ERROR result.
    """

    finite = False

    def __init__(self, capture: Capture, *, timeout: float = 5.0) -> None:
        self.capture, self.timeout = capture, timeout
        self._requests: queue.Queue = queue.Queue()
        self._stopped = threading.Event()
        self.problem: str | None = None

    @property
    def ended(self) -> bool:
        return self._stopped.is_set()

    def describe(self) -> str:
        return self.capture.describe()

    def fire(self, tag: str) -> None:
        """Take one part (``tag`` names it in errors: the result id it will have)."""
        if self._stopped.is_set():
            raise SourceError("the station is stopping")
        self._requests.put(tag)

    def frames(self) -> Iterator[Frame]:
        while not self._stopped.is_set():
            tag = self._requests.get()
            if tag is _END:
                return
            yield self.capture.take(tag, self.timeout)

    def end_run(self) -> None:
        """End the current run's frames (a recipe switch); ``frames()`` may start again."""
        self._requests.put(_END)

    def forget_waiting(self) -> None:
        """Drop the parts asked for and not taken yet (their triggers were answered when
        the run failed): the next run does not take an image for them."""
        while True:
            try:
                self._requests.get_nowait()
            except queue.Empty:
                return

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        return self.capture.destination(frame, verdict)

    def relocate(self, frame: Frame, destination: Path) -> None:
        self.capture.relocate(frame, destination)

    def stop(self) -> None:
        self._stopped.set()
        self._requests.put(_END)
        self.capture.close()


class Relay:
    """A live source (hot folder, free-running camera) read on one thread for the whole
    station, its frames handed to whichever run is current: a recipe switch ends a run
    without closing the camera or forgetting which files were seen."""

    finite = False

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self._ended = threading.Event()
        self._stopped = threading.Event()
        self.problem: str | None = None
        self._reader = threading.Thread(target=self._read, name="inspector-relay", daemon=True)
        self._reader.start()

    def describe(self) -> str:
        return self.source.describe()

    @property
    def ended(self) -> bool:
        """The source gave up (a hot folder that cannot be listed) or was stopped."""
        return self._ended.is_set() and self._frames.empty()

    def _read(self) -> None:
        try:
            for frame in self.source.frames():
                while not self._stopped.is_set():
                    try:
                        self._frames.put(frame, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stopped.is_set():
                    return
        except SourceError as exc:
            self.problem = str(exc)
            log.warning("%s: %s", self.source.describe(), exc)
        finally:
            self._ended.set()

    def frames(self) -> Iterator[Frame]:
        while not self._stopped.is_set():
            try:
                item = self._frames.get(timeout=0.2)
            except queue.Empty:
                if self._ended.is_set() and self._frames.empty():
                    return
                continue
            if item is _END:
                return
            yield item

    def end_run(self) -> None:
        """End the current run's frames; the next ``frames()`` goes on where it stopped."""
        try:
            self._frames.put(_END, timeout=0.5)
        except queue.Full:  # a frame waits: the run ends after it (it takes the frame first)
            threading.Thread(target=self._frames.put, args=(_END,), daemon=True).start()

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        return self.source.destination(frame, verdict)

    def relocate(self, frame: Frame, destination: Path) -> None:
        self.source.relocate(frame, destination)

    def stop(self) -> None:
        self._stopped.set()
        self.source.stop()
        self._reader.join(timeout=5)
