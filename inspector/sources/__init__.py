"""Where images come from. Every source yields :class:`Frame` objects.

:func:`open_source` is the one way a face (the command line, the GUI) turns what a user
typed into a source; each source says whether it is finite, where an inspected file
goes, and how it is stopped (:class:`FrameSource`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inspector.errors import SourceError
from inspector.sources.camera import CameraSource, parse_camera
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame, FrameSource
from inspector.sources.hotfolder import HotFolderSource

__all__ = [
    "VIDEO_SUFFIXES",
    "CameraSource",
    "FileSource",
    "Frame",
    "FrameSource",
    "HotFolderSource",
    "SourceOptions",
    "open_source",
]


VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


@dataclass(frozen=True)
class SourceOptions:
    """How a source is read; each source takes the options that concern it.

    Attributes:
        recursive: folders: look into sub-folders.
        every: cameras and videos: inspect every N-th frame.
        trigger: cameras and videos: every frame, or one per software trigger.
        width, height, fps: cameras: requested capture settings.
        settle: hot folders: seconds a file must stay unchanged before it is read.
        idle_timeout: hot folders: stop after this many seconds without a new file.
        sort: hot folders: move each inspected file into pass/, fail/ or error/.
        on_status: cameras: told of the connection's state ("connected", "reconnecting...").
        preview: cameras: called with each grabbed frame (a live view), on their thread.
    """

    recursive: bool = False
    every: int = 1
    trigger: str = "every"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    settle: float = 1.0
    idle_timeout: float | None = None
    sort: bool = False
    on_status: Callable[[str], None] | None = None
    preview: Callable | None = None


def _camera(target: int | str, options: SourceOptions) -> CameraSource:
    return CameraSource(
        target,
        every=options.every,
        trigger=options.trigger,
        width=options.width,
        height=options.height,
        fps=options.fps,
        on_status=options.on_status,
        preview=options.preview,
    )


def open_source(spec: str | Sequence[str], options: SourceOptions | None = None) -> FrameSource:
    """A source from what a user gave.

    ``spec`` is a list of files and folders, or one line of text: ``camera:0`` (or
    ``camera:rtsp://...``), an ``rtsp://`` / ``http://`` URL, ``video:FILE`` or a file
    with a video suffix, ``watch:FOLDER`` for a hot folder, otherwise files and folders
    separated by ``;``.

    Raises:
        SourceError: a file or folder that does not exist (a mistyped source is said
            before a run starts, not stored as an ERROR inspection), a video file that
            does not exist (it would be waited for as a stream), a file given as the
            folder to watch, a bad option.
    """
    options = options or SourceOptions()
    if not isinstance(spec, str):
        return _files(list(spec), options)
    text = spec.strip()
    if text.startswith("camera:"):
        return _camera(parse_camera(text.removeprefix("camera:")), options)
    if "://" in text:
        return _camera(text, options)
    if text.startswith("watch:"):
        folder = text.removeprefix("watch:")
        return HotFolderSource(folder, settle=options.settle, idle_timeout=options.idle_timeout, sort=options.sort)
    if text.startswith("video:") or Path(text).suffix.lower() in VIDEO_SUFFIXES:
        video = text.removeprefix("video:")
        if not Path(video).is_file():  # else it would be taken for a stream and waited for forever
            raise SourceError(f"{video}: no such video file")
        return _camera(video, options)
    return _files([p for p in (part.strip() for part in text.split(";")) if p], options)


def _files(paths: list[str], options: SourceOptions) -> FileSource:
    """Files and folders, each of which must exist. A file that goes missing once the run
    has started is an ERROR row naming it; one that was never there is a typing mistake."""
    if not paths:
        raise SourceError("no image file or folder given")
    problems = []
    for p in paths:
        try:
            Path(p).stat()
        except FileNotFoundError:
            problems.append(f"{p}: no such file or folder")
        except OSError as exc:  # a name too long, a permission, a loop of links
            problems.append(f"{p}: {exc.strerror or exc}")
    if problems:
        raise SourceError("; ".join(problems))
    return FileSource(paths, recursive=options.recursive)
