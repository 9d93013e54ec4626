"""Cameras, network streams and video files through OpenCV ``VideoCapture``.

A live source keeps only the newest frame: a grabber thread reads continuously and the
inspection takes whatever is latest when it is ready, so nothing queues up while the
model works and a preview can show every frame. A video file is read frame by frame.
A camera that drops is reopened with back-off; its state is reported, never raised.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from inspector.engine.image import normalise
from inspector.errors import SourceError
from inspector.sources.frame import Frame

log = logging.getLogger(__name__)

Trigger = Literal["every", "software"]
StatusCallback = Callable[[str], None]


def parse_camera(target: str) -> int | str:
    """A device index ("0") or a URL / path, as VideoCapture wants it."""
    return int(target) if target.strip().isdigit() else target


@dataclass
class _Latest:
    image: np.ndarray | None = None
    index: int = -1
    timestamp: float = 0.0


class CameraSource:
    """Frames from a camera index, an RTSP / HTTP URL, or a video file.

    Args:
        target: device index, URL or video file path.
        live: keep only the newest frame (cameras); False reads every frame (files).
            Defaults to False for existing files, True otherwise.
        every: inspect every N-th frame only.
        trigger: ``"every"`` frame, or ``"software"``: one frame per :meth:`fire`.
        width, height, fps: requested capture settings (the device may ignore them).
        reconnect: reopen a camera that stops delivering (with back-off).
        backoff: first and longest wait between reconnection attempts, seconds.
        on_status: told "connected", "reconnecting in 2.0 s (attempt 3)", "ended"...
        preview: called with every grabbed frame (live view), on the grabber thread.
    """

    def __init__(
        self,
        target: int | str,
        *,
        live: bool | None = None,
        every: int = 1,
        trigger: Trigger = "every",
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.5, 8.0),
        max_attempts: int | None = None,
        on_status: StatusCallback | None = None,
        preview: Callable[[np.ndarray, int], None] | None = None,
    ) -> None:
        if every < 1:
            raise SourceError(f"every must be at least 1, got {every}")
        self.target = target
        self.is_file = isinstance(target, str) and Path(target).is_file()
        self.live = (not self.is_file) if live is None else live
        self.every, self.trigger_mode = every, trigger
        self.settings = {"width": width, "height": height, "fps": fps}
        self.reconnect = reconnect and not self.is_file
        self.backoff, self.max_attempts = backoff, max_attempts
        self.on_status, self.preview = on_status, preview
        self._stop = threading.Event()
        self._fired = threading.Event()
        self._latest = _Latest()
        self._new_frame = threading.Condition()
        self._ended = False
        self._last_taken = -(10**9)
        self.status = "idle"

    finite = False  # a video too: its frames are inspected as they are decoded

    def describe(self) -> str:
        return f"video:{self.target}" if self.is_file else f"camera:{self.target}"

    def destination(self, frame: Frame, verdict: str) -> Path | None:
        return None  # frames have no file (the writer keeps the pixels it is asked to)

    def relocate(self, frame: Frame, destination: Path) -> None:
        pass

    # -- control -----------------------------------------------------------------------

    def fire(self) -> None:
        """Software trigger: inspect the next frame (trigger="software")."""
        self._fired.set()

    def stop(self) -> None:
        self._stop.set()
        with self._new_frame:
            self._new_frame.notify_all()

    def _report(self, status: str) -> None:
        self.status = status
        if self.on_status:
            self.on_status(status)

    # -- capture -----------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture | None:
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            return None
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self.settings["width"]),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.settings["height"]),
            (cv2.CAP_PROP_FPS, self.settings["fps"]),
        ):
            if value:
                capture.set(prop, value)
        return capture

    def _captures(self) -> Iterator[cv2.VideoCapture]:
        """Open, and reopen after a drop, with back-off; ends when stopped or out of attempts."""
        attempt, wait = 0, self.backoff[0]
        while not self._stop.is_set():
            capture = self._open()
            if capture is not None:
                attempt, wait = 0, self.backoff[0]
                self._report("connected")
                yield capture
                capture.release()
                if not self.reconnect or self._stop.is_set():
                    return
            elif not self.reconnect:
                raise SourceError(f"{self.describe()}: cannot open the camera or video")
            attempt += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                self._report(f"gave up after {self.max_attempts} attempts")
                return
            self._report(f"reconnecting in {wait:.1f} s (attempt {attempt})")
            self._stop.wait(wait)
            wait = min(wait * 2, self.backoff[1])

    def _raw_frames(self) -> Iterator[tuple[np.ndarray, int]]:
        index = 0
        ended = "ended"
        for capture in self._captures():
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok or image is None:
                    break  # dropped or ended: the capture loop decides whether to reopen
                yield normalise(image, name=self.describe()), index
                index += 1
            if self.is_file and not self._stop.is_set():
                if index == 0:
                    # OpenCV opens some files it cannot decode (any name its image-sequence
                    # reader accepts): not one frame is an error, not an empty run.
                    raise SourceError(f"{self.describe()}: not one frame could be read (not a video OpenCV can decode)")
                # A truncated or damaged file reads like a shorter one: say where it stopped.
                total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                if index < total:
                    ended = f"ended at frame {index} of {total}: the rest could not be decoded"
                    log.warning("%s: %s", self.describe(), ended)
        self._report(ended)

    def _grab_loop(self) -> None:
        try:
            for image, index in self._raw_frames():
                if self.preview:
                    self.preview(image, index)
                with self._new_frame:
                    self._latest = _Latest(image, index, time.time())
                    self._new_frame.notify_all()
        except SourceError as exc:
            self._report(str(exc))
        finally:
            with self._new_frame:
                self._ended = True
                self._new_frame.notify_all()

    def _wanted(self, index: int) -> bool:
        # Every N-th frame counts frames grabbed, so a live source that drops frames
        # still inspects at the rate asked for.
        if index - self._last_taken < self.every:
            return False
        if self.trigger_mode == "software":
            if not self._fired.is_set():
                return False
            self._fired.clear()
        self._last_taken = index
        return True

    def _frame(self, image: np.ndarray, index: int, timestamp: float) -> Frame:
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        return Frame(name=f"{self.describe()}#{index:06d}", sha256=digest, pixels=image, timestamp=timestamp)

    def frames(self) -> Iterator[Frame]:
        if not self.live:
            for image, index in self._raw_frames():
                if self.preview:
                    self.preview(image, index)
                if self._wanted(index):
                    yield self._frame(image, index, time.time())
            return
        grabber = threading.Thread(target=self._grab_loop, name="inspector-grabber", daemon=True)
        grabber.start()
        last = -1
        try:
            while True:
                with self._new_frame:
                    while self._latest.index == last and not self._ended and not self._stop.is_set():
                        self._new_frame.wait(0.5)
                    if self._stop.is_set() or (self._ended and self._latest.index == last):
                        return
                    latest = self._latest
                last = latest.index
                if self._wanted(latest.index):
                    yield self._frame(latest.image, latest.index, latest.timestamp)
        finally:
            self.stop()
            grabber.join(timeout=5)
