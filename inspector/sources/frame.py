"""The one frame type every source yields, so the pipeline never cares where it came from."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from inspector.engine.image import Picture, decode_image, decode_reduced
from inspector.errors import SourceError


@dataclass(frozen=True)
class Frame:
    """One image to inspect.

    Attributes:
        name: what the user knows it by (a path, or camera and frame number).
        sha256: content hash of the encoded file or raw pixels; None when unreadable.
        path: the file, when the frame is one.
        data: encoded bytes (files); decoded on demand.
        pixels: decoded BGR pixels (cameras, video).
        error: why the source could not deliver this frame.
        timestamp: seconds since the epoch when the frame was taken or found.
    """

    name: str
    sha256: str | None = None
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    pixels: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    timestamp: float = field(default_factory=time.time)

    def image(self) -> np.ndarray:
        """The frame as (H, W, 3) uint8 BGR; SourceError when it cannot be had."""
        if self.error is not None:
            raise SourceError(self.error)
        if self.pixels is not None:
            return self.pixels
        if self.data is None:
            raise SourceError(f"{self.name}: no image data")
        return decode_image(self.data, name=self.name)

    def image_at(self, min_side: int | None = None) -> Picture:
        """The frame decoded as small as keeps ``min_side`` pixels on its longer side where
        that is cheap (JPEG files; see ``decode_reduced``), with the size of the full-size
        frame; SourceError when it cannot be had."""
        if min_side and self.error is None and self.pixels is None and self.data is not None:
            return decode_reduced(self.data, name=self.name, min_side=min_side)
        return Picture.of(self.image())


class FrameSource(Protocol):
    """Anything that yields frames: files, folders, hot folders, cameras, videos.

    Attributes:
        finite: whether the frames are all there already (files and folders: read
            ahead and inspected several at once) or come as they come (cameras, hot
            folders: inspected one at a time, as soon as each arrives).
    """

    finite: bool

    def frames(self) -> Iterator[Frame]: ...

    def describe(self) -> str:
        """The source as the run row records it."""
        ...

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        """Where the frame's file goes once its result is stored (a hot folder sorting
        into pass/ fail/ error/), which is what the database records; None: it stays."""
        ...

    def relocate(self, frame: Frame, destination: Path) -> None:
        """Move the frame's file to ``destination``; called only once its result is
        durable, so a stop at any moment loses no image."""
        ...

    def stop(self) -> None:
        """End the frames early (a live source waiting for the next frame wakes up)."""
        ...
