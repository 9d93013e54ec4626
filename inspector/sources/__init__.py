"""Where images come from. Every source yields :class:`Frame` objects."""

from inspector.errors import SourceError
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame, FrameSource

__all__ = ["VIDEO_SUFFIXES", "FileSource", "Frame", "FrameSource", "open_source"]


VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


def open_source(spec: str, **options) -> FrameSource:
    """A source from one line of text, as typed in the GUI.

    ``camera:0`` or ``rtsp://...`` / ``http://...`` for cameras, a video file path,
    ``watch:FOLDER`` for a hot folder, otherwise files and folders separated by ``;``.
    ``options`` go to the source (e.g. ``every`` for cameras, ``sort`` for hot folders).
    """
    from pathlib import Path

    from inspector.sources.camera import CameraSource, parse_camera
    from inspector.sources.hotfolder import HotFolderSource

    text = spec.strip()
    if text.startswith("camera:"):
        return CameraSource(parse_camera(text.removeprefix("camera:")), **options)
    if "://" in text:
        return CameraSource(text, **options)
    if text.startswith("watch:"):
        return HotFolderSource(text.removeprefix("watch:"), **options)
    if Path(text).suffix.lower() in VIDEO_SUFFIXES:
        if not Path(text).is_file():  # else it would be taken for a stream and waited for forever
            raise SourceError(f"{text}: no such video file")
        return CameraSource(text, **options)
    return FileSource([p for p in (part.strip() for part in text.split(";")) if p])
