"""Reading ahead: the next images are read, hashed and decoded while one is inspected.

For finite sources (files and folders) only: a live source is read when its frame is
due, never ahead of time. The queue is bounded, so reading ahead never holds more than
a few decoded images, and images the run will skip (already inspected) are not decoded.
Work can follow the decoding on the same threads, several frames at once: registering
them to the reference, or inspecting them whole (see ``services/parallel.py``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from inspector.engine.image import Picture
from inspector.errors import InspectorError
from inspector.sources.frame import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoded:
    """A frame with its pixels decoded (or why not), and how long reading took: wall time,
    and the reading thread's CPU time (the cost; wall time also counts waiting for a core).

    ``picture`` may be smaller than the frame (see ``min_side`` in :func:`decode`).
    """

    frame: Frame
    picture: Picture | None = None
    error: str | None = None
    read_ms: float = 0.0
    read_cpu_ms: float = 0.0
    registration: object | None = None  # the pipeline's Registration, when registered ahead
    inspected: tuple | None = None  # (InspectionResult, image), when inspected ahead

    @property
    def image(self) -> np.ndarray | None:
        """The decoded pixels (None: the frame could not be read, or was not read)."""
        return None if self.picture is None else self.picture.pixels


def decode(frame: Frame, *, min_side: int | None = None) -> Decoded:
    """Decode a frame, as small as keeps ``min_side`` pixels where that is cheap."""
    t0, cpu0 = time.perf_counter(), time.thread_time()
    try:
        picture = frame.image_at(min_side)
    except InspectorError as exc:
        picture, error = None, str(exc)
    except Exception as exc:  # a decoder fault: this image's error, not the end of the run
        log.exception("reading %s failed", frame.name)
        picture, error = None, f"{frame.name}: cannot be read ({exc!r})"
    else:
        error = None
    cpu_ms = (time.thread_time() - cpu0) * 1e3  # first: its interval inside the wall time's
    took = {"read_ms": (time.perf_counter() - t0) * 1e3, "read_cpu_ms": cpu_ms}
    return Decoded(frame, picture, error=error, **took)


# More work on a decoded frame, done ahead by the thread that decoded it.
Then = Callable[[Decoded], Decoded]


def _decode_then(frame: Frame, min_side: int | None, then: Then | None) -> Decoded:
    decoded = decode(frame, min_side=min_side)
    return decoded if then is None else then(decoded)


READ_AHEAD_DEPTH = 2  # images decoded ahead: enough to hide reading, few enough to hold
_END = object()


def read_ahead(
    frames: Iterable[Frame],
    *,
    skip: Callable[[Frame], bool],
    depth: int = 2,
    min_side: int | None = None,
    then: Then | None = None,
    workers: int = 1,
) -> Iterator[Decoded]:
    """Decoded frames, in order, produced by a background thread up to ``depth`` frames
    ahead, each passed through ``then`` when given; with ``workers`` above 1 that many
    frames are decoded (and passed on) at once, on a pool of threads.

    ``skip(frame)`` is asked before decoding; such frames come back undecoded.
    Closing the iterator (or leaving the loop) stops the threads and waits for them.
    """
    pool = ThreadPoolExecutor(workers, thread_name_prefix="inspector-prepare") if workers > 1 else None
    # Room for every worker's image besides the ones waiting, so that none stands idle.
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth) + (workers if pool else 0))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                if skip(frame):
                    item = Decoded(frame)
                elif pool is not None:
                    item = pool.submit(_decode_then, frame, min_side, then)
                else:
                    item = _decode_then(frame, min_side, then)
                if not put(item):
                    return
        except BaseException as exc:  # the source failed: hand the error to the consumer
            put(exc)
            return
        put(_END)

    thread = threading.Thread(target=produce, name="inspector-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item.result() if isinstance(item, Future) else item
    finally:
        stop.set()
        while True:  # free a producer blocked on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                break
        thread.join(timeout=10.0)  # at most one decode in flight
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
