"""A writer thread: overlays, defect crops and database rows, off the inference thread.

Results are committed in small batches (a few images or half a second, whichever comes
first), so a killed run loses at most the batch in flight and never half a row.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy.exc import IntegrityError

from inspector.engine.image import write_image
from inspector.engine.overlay import draw_findings, load_label_font
from inspector.engine.types import FAIL
from inspector.errors import InspectorError, StoreError
from inspector.store.database import Store, database_problem
from inspector.store.repository import InspectionRecord, add_inspections, already_stored

log = logging.getLogger(__name__)

BATCH_SIZE = 16
BATCH_SECONDS = 0.5
_STOP = object()


@dataclass(frozen=True)
class _Pending:
    """A record waiting to be written, with the pixels its pictures are made from."""

    record: InspectionRecord
    image: np.ndarray | None
    has_file: bool  # False for camera frames: the writer keeps the pixels (see save_frames)
    then: Callable[[], None] | None  # once the row is durable: e.g. move the file into pass/ or fail/


CROP_SIDE = 160  # the longest side of a defect's picture in the database, in pixels
CROP_QUALITY = 80


def small_jpeg(crop: np.ndarray) -> bytes | None:
    """A defect's picture as the row keeps it: at most CROP_SIDE pixels a side, JPEG (a
    few kilobytes: see benchmarks/README.md)."""
    h, w = crop.shape[:2]
    scale = min(1.0, CROP_SIDE / max(h, w))
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_QUALITY])
    return data.tobytes() if ok else None


def _outlined(crop: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """A defect's crop with its own outline drawn (no labels: neighbours' would crowd it)."""
    drawn = np.ascontiguousarray(crop).copy()
    if len(outline) >= 2:
        thickness = max(1, round(max(crop.shape[:2]) / 120))
        cv2.polylines(drawn, [np.round(outline).astype(np.int32)], True, (40, 40, 230), thickness, cv2.LINE_AA)
    return drawn


def _safe_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", Path(name).stem)[:60] or "image"


class ResultWriter:
    """Consumes results from a bounded queue; call :meth:`close` to flush and stop.

    Args:
        store: the open database.
        images_dir: folder for overlays (FAIL images) and defect crops.
        save_overlays: write overlay and crop pictures for FAIL results.
        save_frames: camera frames have no file: keep them for ``"fail"`` results, ``"all"``
            of them, or ``"none"``, so a row can point to its picture.
    """

    def __init__(
        self, store: Store, images_dir: Path, *, save_overlays: bool = True, save_frames: str = "fail"
    ) -> None:
        self.store = store
        self.images_dir = images_dir
        self.save_overlays = save_overlays
        self.save_frames = save_frames
        # Bounded: if the disk or database falls behind, inference waits instead of
        # piling images up in memory.
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self.written = 0
        self.busy_s = 0.0  # time spent writing pictures and rows (the store stage)
        self.busy_cpu_s = 0.0  # the writer thread's CPU time for them (busy_s also counts waiting for a core)
        self.pictures_lost = 0  # results stored without their overlay, crops or frame
        # Results another station or run stored first (the same image, recipe and model),
        # by verdict: not stored twice.
        self.stored_elsewhere: Counter = Counter()
        self._thread = threading.Thread(target=self._loop, name="inspector-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        record: InspectionRecord,
        image: np.ndarray | None,
        *,
        has_file: bool = True,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue a record; its pictures are made from ``image`` (the decoded frame, or
        None). A frame without a file of its own (``has_file`` false: a camera's) is
        kept as a picture as ``save_frames`` says. ``then`` runs on the writer thread once
        the row is committed (or found stored already), never before."""
        self._put(_Pending(record, image, has_file, then))

    def close(self) -> None:
        """Write everything submitted, then stop the thread; re-raises a write failure."""
        if self._thread.is_alive():
            self._put(_STOP, check=False)
            self._thread.join()
            if self.pictures_lost:
                log.warning("%d results were stored without (some of) their pictures", self.pictures_lost)
        self._raise_if_failed()

    def _put(self, item, *, check: bool = True) -> None:
        while True:
            if check:
                self._raise_if_failed()
            if not self._thread.is_alive():
                return
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError(f"results could not be written: {database_problem(self._error)}") from self._error

    def _write(self, path: Path, image: np.ndarray, lost: list[BaseException]) -> str | None:
        """Write one picture; a failure (a full disk, a blocked folder) is noted in ``lost``
        and costs that picture only, never the result's row."""
        try:
            return str(write_image(path, image))
        except (InspectorError, OSError) as exc:
            lost.append(exc)
            return None

    def _pictures(self, item: _Pending, lost: list[BaseException]) -> tuple[str | None, tuple, tuple]:
        """A FAIL's overlay file, its defects' crop files, and their small JPEGs for the row."""
        record, result = item.record, item.record.result
        if not (self.save_overlays and result.verdict == FAIL and item.image is not None):
            return None, (), ()
        folder = self.images_dir / f"run_{record.run_id:05d}"
        stem = f"{_safe_stem(record.image_path)}_{(record.image_sha256 or 'x')[:10]}"
        h, w = item.image.shape[:2]
        findings = result.findings_at((w, h))  # the image may have been decoded smaller
        overlay = self._write(folder / f"{stem}_overlay.jpg", draw_findings(item.image, findings), lost)
        crops, jpegs = [], []
        for k, finding in enumerate(findings):
            x1, y1, x2, y2 = finding.box
            pad = max(8.0, 0.25 * max(x2 - x1, y2 - y1))
            x0, y0 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
            x3, y3 = int(min(w, x2 + pad + 1)), int(min(h, y2 + pad + 1))
            if x3 <= x0 or y3 <= y0:
                crops.append(None)
                jpegs.append(None)
                continue
            crops.append(self._write(folder / f"{stem}_defect{k}.png", item.image[y0:y3, x0:x3], lost))
            jpegs.append(small_jpeg(_outlined(item.image[y0:y3, x0:x3], finding.outline - (x0, y0))))
        return overlay, tuple(crops), tuple(jpegs)

    def _frame_file(self, item: _Pending, lost: list[BaseException]) -> str:
        """Where the row's image lives: its file, or a saved copy of a camera frame (the
        frame's name when the copy could not be written)."""
        record = item.record
        keep = self.save_frames == "all" or (self.save_frames == "fail" and record.result.verdict == FAIL)
        if item.has_file or item.image is None or not keep:
            return record.image_path
        folder = self.images_dir / f"run_{record.run_id:05d}" / "frames"
        return self._write(folder / f"{_safe_stem(record.image_path)}.png", item.image, lost) or record.image_path

    def _picture_lost(self, item: _Pending, exc: BaseException) -> None:
        self.pictures_lost += 1
        if self.pictures_lost == 1:  # once: a full disk would say it for every image
            log.warning("%s: stored without (some of) its pictures: %s", item.record.image_path, exc)

    def _flush(self, batch: list[_Pending]) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        records = []
        for item in batch:
            lost: list[BaseException] = []
            overlay, crops, jpegs = self._pictures(item, lost)
            image_path = self._frame_file(item, lost)
            if lost:
                self._picture_lost(item, lost[0])
            records.append(
                replace(item.record, image_path=image_path, overlay_path=overlay, crop_paths=crops, crop_jpegs=jpegs)
            )
        attempt = 0
        while True:
            try:
                self.store.check_unchanged()  # a database deleted or replaced under the run
                with self.store.session() as session, session.begin():
                    stored = already_stored(session, records)
                    add_inspections(session, [r for r in records if r.identity not in stored])
                break
            except IntegrityError:
                # Another writer stored one of these between our look and our insert:
                # look again (the next look finds it).
                attempt += 1
                if attempt == 5:
                    raise
            except StoreError:
                raise
            except Exception as exc:  # a locked database: wait and try again, then give up loudly
                attempt += 1
                if attempt == 3:
                    raise
                log.warning("database write failed (%s); retrying", database_problem(exc))
                time.sleep(float(attempt))
        for record in records:
            if record.identity in stored:
                self.stored_elsewhere[record.result.verdict] += 1
        self.written += len(records) - sum(record.identity in stored for record in records)
        # CPU time read first: its interval inside the wall time's, never longer.
        self.busy_cpu_s += time.thread_time() - cpu_started
        self.busy_s += time.perf_counter() - started
        for item in batch:
            if item.then is not None:
                self._after_stored(item)

    def _after_stored(self, item: _Pending) -> None:
        """Run a record's follow-up (a file move); its failure is told, and costs no row."""
        try:
            item.then()
        except OSError as exc:
            log.warning("%s: stored, but could not be moved: %s", item.record.image_path, exc.strerror or exc)

    def _loop(self) -> None:
        if self.save_overlays:
            load_label_font()  # while the first image is inspected
        batch: list[_Pending] = []
        deadline = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None and item is not _STOP:
                batch.append(item)
                deadline = deadline or time.monotonic() + BATCH_SECONDS
            if batch and (item is None or item is _STOP or len(batch) >= BATCH_SIZE):
                try:
                    self._flush(batch)
                except BaseException as exc:  # reported to the producer on its next submit
                    self._error = exc
                    self._drain()
                    return
                batch, deadline = [], None
            if item is _STOP:
                return

    def _drain(self) -> None:
        """Unblock a producer waiting on a full queue after a failure."""
        while True:
            try:
                if self._queue.get_nowait() is _STOP:
                    return
            except queue.Empty:
                return
