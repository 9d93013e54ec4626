"""A hot folder: images dropped into a folder are inspected once they are completely written.

A file counts as complete when its size and modification time have not changed for a
settling time (a file renamed into the folder is complete at once, and passes the same
test). Files are yielded once per watcher; a restarted watcher relies on the results
store, which skips images it has already inspected (by content hash). Sorted files move
only once their result is stored; a file stored but not yet moved when the watcher
stopped is sorted by its stored verdict when the watcher starts again. A folder that is
emptied, removed or recreated is waited for, not an error.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from inspector.engine.image import read_bytes
from inspector.errors import SourceError
from inspector.sources.files import IMAGE_SUFFIXES
from inspector.sources.frame import Frame

SORT_FOLDERS = {"PASS": "pass", "FAIL": "fail", "ERROR": "error"}


class HotFolderSource:
    """Watch ``folder`` (not its sub-folders) for new image files.

    Args:
        folder: the folder to watch (created if missing).
        poll: seconds between looks.
        settle: seconds a file's size must stay unchanged before it is read.
        idle_timeout: stop after this many seconds without a new file (None: never).
        sort: move each inspected file into pass/, fail/ or error/ beside it.
    """

    finite = False

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        poll: float = 0.5,
        settle: float = 1.0,
        idle_timeout: float | None = None,
        sort: bool = False,
    ) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SourceError(f"{self.folder}: is a file, not a folder to watch")
        self.poll, self.settle, self.idle_timeout, self.sort = poll, settle, idle_timeout, sort
        self._stop = threading.Event()
        self._seen: set[tuple[str, int, int]] = set()
        self._pending: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime, stable since)
        self._read_as: dict[str, tuple[int, int, int]] = {}  # path -> (size, mtime, inode) when read

    def describe(self) -> str:
        return f"watch:{self.folder}"

    def stop(self) -> None:
        self._stop.set()

    def _listing(self) -> list[os.DirEntry]:
        try:
            return [
                e
                for e in os.scandir(self.folder)
                if e.is_file(follow_symlinks=False) and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
            ]
        except FileNotFoundError:
            return []  # emptied away or being recreated: keep watching
        except OSError as exc:
            raise SourceError(f"{self.folder}: cannot watch the folder ({exc.strerror or exc})") from None

    def _ready(self) -> list[Path]:
        now = time.monotonic()
        ready = []
        current = set()
        for entry in self._listing():
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            key = (entry.name, stat.st_size, stat.st_mtime_ns)
            current.add(entry.name)
            if key in self._seen or stat.st_size == 0:
                continue
            previous = self._pending.get(entry.name)
            if previous is None or previous[:2] != (stat.st_size, stat.st_mtime_ns):
                self._pending[entry.name] = (stat.st_size, stat.st_mtime_ns, now)
            elif now - previous[2] >= self.settle:
                self._seen.add(key)
                del self._pending[entry.name]
                ready.append(Path(entry.path))
        for name in list(self._pending):
            if name not in current:
                del self._pending[name]
        return sorted(ready)

    def frames(self) -> Iterator[Frame]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"{self.folder}: cannot create the folder to watch ({exc.strerror or exc})") from None
        last_new = time.monotonic()
        while not self._stop.is_set():
            ready = self._ready()
            for path in ready:
                try:
                    self._note_read(path)
                    data = read_bytes(path)
                except SourceError as exc:
                    yield Frame(name=str(path), path=path, error=str(exc))
                    continue
                yield Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())
            if ready:
                last_new = time.monotonic()
            elif self.idle_timeout is not None and time.monotonic() - last_new > self.idle_timeout:
                return
            self._stop.wait(self.poll)

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        """Where a sorted file goes: pass/, fail/ or error/ under its own name, or with
        its content hash added where that name is taken."""
        if not self.sort or frame.path is None:
            return None
        target = self.folder / SORT_FOLDERS[verdict] / frame.path.name
        if target.exists():
            target = target.with_name(f"{frame.path.stem}_{(frame.sha256 or 'x')[:12]}{frame.path.suffix}")
        return target

    def _note_read(self, path: Path) -> None:
        """What the file was when it was read: it is moved later only if still that."""
        try:
            stat = path.stat()
        except OSError:
            return  # gone: reading it says so
        self._read_as[str(path)] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)

    def relocate(self, frame: Frame, destination: Path) -> None:
        """Move a sorted file (called once its result is stored), unless it was written
        again since it was read: that content is not what was inspected, and is seen again
        as a change."""
        if frame.path is None:
            return
        read_as = self._read_as.pop(str(frame.path), None)
        try:
            now = frame.path.stat()
        except FileNotFoundError:
            return  # taken away meanwhile
        if read_as is not None and (now.st_size, now.st_mtime_ns, now.st_ino) != read_as:
            return
        destination.parent.mkdir(exist_ok=True)
        shutil.move(str(frame.path), destination)
