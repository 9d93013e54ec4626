"""Image files and folders (optionally recursive), read lazily, one frame at a time."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from inspector.engine.image import read_bytes
from inspector.errors import SourceError
from inspector.sources.frame import Frame

# What OpenCV decodes (GIF: its first frame, where the build has a GIF decoder, as 5.0
# has; elsewhere a GIF is an ERROR row naming it). A folder's other files are left out.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm", ".exr", ".hdr"}
    | {".gif"}
)


def _folder_files(folder: Path, *, recursive: bool) -> Iterator[Path | Frame]:
    """Image files of a folder in name order. A folder that cannot be listed is an ERROR
    frame naming it, and the listing goes on with the rest; one that vanishes ends its
    own listing."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        error = f"{folder}: cannot list the folder ({exc.strerror or exc})"
        yield Frame(name=str(folder), path=folder, error=error)
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _folder_files(Path(entry.path), recursive=True)
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(entry.path)
        except OSError:
            continue  # removed while we looked at it


class FileSource:
    """Frames from files and folders given on the command line.

    A missing file or a folder that cannot be listed becomes an ERROR frame that names
    it; a folder that disappears mid-run yields what it still had.
    """

    finite = True

    def __init__(self, paths: Sequence[str | os.PathLike], *, recursive: bool = False) -> None:
        self.paths = [Path(p) for p in paths]
        self.recursive = recursive

    def describe(self) -> str:
        return ", ".join(str(p) for p in self.paths)

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        return None  # files stay where they are

    def relocate(self, frame: Frame, destination: Path) -> None:
        pass

    def stop(self) -> None:
        pass  # the run stops between files

    def files(self) -> Iterator[Path | Frame]:
        """The image files in order, without reading them (a folder that cannot be
        listed is an ERROR frame in their place)."""
        for path in self.paths:
            if path.is_dir():
                yield from _folder_files(path, recursive=self.recursive)
            else:
                yield path

    def frames(self) -> Iterator[Frame]:
        for item in self.files():
            if isinstance(item, Frame):
                yield item
                continue
            try:
                data = read_bytes(item)
            except SourceError as exc:
                yield Frame(name=str(item), path=item, error=str(exc))
                continue
            yield Frame(name=str(item), path=item, data=data, sha256=hashlib.sha256(data).hexdigest())
