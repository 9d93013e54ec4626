"""The inspection loop: frames from a source, through the pipeline, into the store.

Frames stream in order; results go to a writer thread so storing never stalls
inference. A folder is read ahead, and on a CPU inspected two images at a time (see
``services/parallel.py``); results are stored in the frames' order either way. Images
already inspected with the same recipe and model (by content hash) are skipped unless
forced, which is also how a killed run resumes without duplicates.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from inspector import __version__
from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.threads import inference_threads, set_inference_threads
from inspector.engine.types import ERROR, InspectionResult
from inspector.errors import InspectorError, StoreError
from inspector.services.parallel import (
    PipelinePerThread,
    inspection_workers,
    registration_workers,
    runtime_of,
    threads_per_worker,
)
from inspector.services.read_ahead import READ_AHEAD_DEPTH, Decoded, Then, decode, read_ahead
from inspector.services.writer import ResultWriter
from inspector.sources.frame import Frame, FrameSource
from inspector.store.database import Store, database_problem
from inspector.store.models import utcnow
from inspector.store.repository import (
    InspectedBefore,
    InspectionRecord,
    finish_run,
    inspected_before,
    recipe_snapshot,
    register_station,
    result_key,
    start_run,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """How a run stores what it inspects; the same for every face (CLI, GUI, station).

    Attributes:
        station: the station name stored with the run (default: the host name).
        force: inspect images again that this recipe and model already inspected
            (otherwise skipped by content hash, which is how a killed run resumes).
        save_overlays: write overlay pictures and defect crops of FAIL images.
        save_frames: sources without files (cameras): keep the frames of ``"fail"``
            results, ``"all"`` frames, or ``"none"``.
        workers: finite sources: inspect this many images at once, each on its own
            thread with a network of its own (1: one at a time); None decides by where
            the network runs (see ``services/parallel.py``).
        register_ahead: finite sources inspected one at a time: register images to the
            reference on this many threads (0: on the inspecting thread); None decides
            by where the network runs.
        read_ahead: finite sources: images read and decoded ahead of the network.
        recipe_version: the published version of the recipe (``inspector recipe pull``),
            recorded with the run.
    """

    station: str | None = None
    force: bool = False
    save_overlays: bool = True
    save_frames: str = "fail"
    workers: int | None = None
    register_ahead: int | None = None
    read_ahead: int = READ_AHEAD_DEPTH
    recipe_version: int | None = None  # the published version the recipe was pulled as

    def describe(self, backend: str | None) -> dict:
        """What the run row records of them."""
        return {
            "force": self.force,
            "save_overlays": self.save_overlays,
            "save_frames": self.save_frames,
            "backend": backend,  # which engine ran the network (torch or an ONNX export of the same weights)
        }


# (frame, result, decoded image or None when it could not be read)
ResultCallback = Callable[[Frame, InspectionResult, np.ndarray | None], None]


@dataclass(frozen=True)
class RunEvents:
    """What a face hears of a run, on the inspecting thread.

    Attributes:
        result: each result, with the decoded image (which may be smaller than the
            frame: see ``InspectionPipeline.decode_side``; ``InspectionResult.findings_at``
            puts the findings on it).
        skipped: each frame skipped as already inspected.
        started: the run's id, once its row is stored and before the first frame (an
            output names each result by run and sequence, which a consumer can dedupe on).
    """

    result: ResultCallback | None = None
    skipped: Callable[[Frame], None] | None = None
    started: Callable[[int], None] | None = None


@dataclass
class RunSummary:
    run_id: int
    counts: Counter = field(default_factory=Counter)  # PASS / FAIL / ERROR
    skipped: int = 0
    elapsed_s: float = 0.0
    store_s: float = 0.0  # writer thread time: pictures and database rows
    store_cpu_s: float = 0.0  # the writer thread's CPU time for them
    read_cpu_s: float = 0.0  # CPU time reading and decoding images
    pictures_lost: int = 0  # results stored without (some of) their pictures: a full disk, a blocked folder
    workers: int = 1  # images inspected at once
    status: str = "running"

    @property
    def inspected(self) -> int:
        return sum(self.counts.values())

    @property
    def yield_percent(self) -> float | None:
        judged = self.counts["PASS"] + self.counts["FAIL"]
        return 100.0 * self.counts["PASS"] / judged if judged else None

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "inspected": self.inspected,
            "pass": self.counts["PASS"],
            "fail": self.counts["FAIL"],
            "error": self.counts["ERROR"],
            "skipped": self.skipped,
            "pictures_lost": self.pictures_lost,
            "yield_percent": None if self.yield_percent is None else round(self.yield_percent, 2),
            "elapsed_s": round(self.elapsed_s, 2),
        }


def decode_side(pipeline: InspectionPipeline) -> int | None:
    """The pixels images need (see ``InspectionPipeline.decode_side``); None, to decode in
    full, when the reference cannot be prepared: each image then gets that ERROR."""
    try:
        return pipeline.decode_side()
    except InspectorError:
        return None


def inspect_frame(
    pipeline: InspectionPipeline, frame: Frame, decoded: Decoded
) -> tuple[InspectionResult, np.ndarray | None]:
    """One frame's result (never an exception) and its decoded pixels, if it had any."""
    read_ms, picture = decoded.read_ms, decoded.picture
    if picture is None:
        return pipeline.error_result(decoded.error or f"{frame.name}: no image", {"read": read_ms}), None
    try:
        result = pipeline.inspect(picture, registration=decoded.registration)
        return result.with_timing("read", read_ms), picture.pixels
    except InspectorError as exc:
        return pipeline.error_result(str(exc), {"read": read_ms}), picture.pixels
    except Exception as exc:  # a bug must not stop the line: log it, record it, go on
        log.exception("inspecting %s failed", frame.name)
        message = f"internal error while inspecting {frame.name}: {exc!r}"
        return pipeline.error_result(message, {"read": read_ms}), picture.pixels


def _work_ahead(pipeline: InspectionPipeline, inspectors: int, registrars: int | None) -> tuple[Then | None, int, int]:
    """What the read-ahead threads do after decoding, how many of them do it, and how
    many images are inspected at once.

    ``inspectors`` above 1: inspect each image whole, that many at once (each thread
    with a pipeline of its own: see ``PipelinePerThread``). Otherwise register images on ``registrars``
    threads (None: as ``registration_workers`` decides; 0: the loop registers them).
    """
    if inspectors > 1:
        try:
            per_thread = PipelinePerThread(pipeline, copies=inspectors, threads=threads_per_worker(inspectors))
        except Exception:  # e.g. no reference to share: one at a time, and each image gets the reason
            log.debug("inspecting one image at a time", exc_info=True)
        else:

            def inspect_ahead(decoded: Decoded) -> Decoded:
                return replace(decoded, inspected=inspect_frame(per_thread(), decoded.frame, decoded))

            return inspect_ahead, inspectors, inspectors
    registrars = registration_workers(pipeline) if registrars is None else registrars
    if not registrars:
        return None, 1, 1

    def register_ahead(decoded: Decoded) -> Decoded:
        if decoded.image is None:
            return decoded
        try:
            registration = pipeline.register(decoded.picture)
        except Exception:  # inspecting registers it again and reports what is wrong
            log.debug("registering %s ahead failed", decoded.frame.name, exc_info=True)
            return decoded
        return replace(decoded, registration=registration)

    return register_ahead, registrars, 1


def _open_run(
    pipeline: InspectionPipeline, store: Store, source: FrameSource, settings: RunSettings
) -> tuple[int, int, InspectedBefore]:
    """Store the recipe and a run row; returns their ids and the images already done."""
    model = pipeline.model
    runtime = runtime_of(pipeline)  # which engine runs the network: torch, or an ONNX export
    station = settings.station or socket.gethostname()
    for attempt in range(3):
        try:
            with store.session() as session, session.begin():
                register_station(session, name=station, host=socket.gethostname(), version=__version__)
                recipe_id = recipe_snapshot(session, pipeline.recipe)
                run_id = start_run(
                    session,
                    recipe_id=recipe_id,
                    model=model,
                    station=station,
                    source=source.describe(),
                    settings=settings.describe(runtime.backend if runtime is not None else None),
                    recipe_version=settings.recipe_version,
                )
                done = (
                    InspectedBefore()
                    if settings.force
                    else inspected_before(session, recipe_sha256=pipeline.recipe_hash, model_sha256=model.sha256)
                )
            break
        except IntegrityError as exc:  # another station stored the same new recipe (or name) a moment before
            if attempt == 2:
                raise StoreError(f"{store.url}: starting the run: {database_problem(exc)}") from exc
        except SQLAlchemyError as exc:  # locked, refused, unreachable: said, not a traceback
            raise StoreError(f"{store.url}: starting the run: {database_problem(exc)}") from exc
    return recipe_id, run_id, done


@contextmanager
def _decoded_frames(
    pipeline: InspectionPipeline, source: FrameSource, settings: RunSettings, skip: Callable[[Frame], bool]
) -> Iterator[tuple[Iterator[Frame | Decoded], int]]:
    """The source's frames as the loop takes them, and how many images are inspected at
    once: a finite source's read (and registered, or inspected) ahead on other threads,
    a live source's as they come. Leaving stops the reading threads."""
    frames = source.frames()
    if not (source.finite and settings.read_ahead):
        yield frames, 1
        return
    threads_before = inference_threads()  # worker threads set their own (see parallel.py)
    then, threads, workers = _work_ahead(
        pipeline, inspection_workers(pipeline, settings.workers), settings.register_ahead
    )
    reader = read_ahead(
        frames, skip=skip, depth=settings.read_ahead, min_side=decode_side(pipeline), then=then, workers=threads
    )
    try:
        yield reader, workers
    finally:
        reader.close()  # stops the reading threads
        set_inference_threads(threads_before)


def run_inspection(
    pipeline: InspectionPipeline,
    store: Store,
    source: FrameSource,
    settings: RunSettings | None = None,
    events: RunEvents | None = None,
    *,
    cancel: threading.Event | None = None,
) -> RunSummary:
    """Inspect every frame of ``source`` once and store the results.

    A finite source is read ahead and may be inspected several images at once (see
    ``RunSettings``); a live one is inspected frame by frame as it comes. Set ``cancel``
    to stop after the current frame.
    """
    settings = settings or RunSettings()
    events = events or RunEvents()
    recipe_id, run_id, done = _open_run(pipeline, store, source, settings)
    summary = RunSummary(run_id=run_id)
    if events.started:
        events.started(run_id)
    writer = ResultWriter(
        store, store.images_dir, save_overlays=settings.save_overlays, save_frames=settings.save_frames
    )
    started = time.perf_counter()

    def already_done(frame: Frame) -> bool:
        return done.verdict(frame.sha256, frame.name) is not None

    errored: set[str] = set()  # files of this run whose last result was an ERROR
    # A forced run's results sit beside the earlier ones under a token of its own (random:
    # unlike the run's id, unique in every database the results are forwarded to).
    forced_as = uuid.uuid4().hex[:16] if settings.force else None

    problem: BaseException | None = None
    try:
        with _decoded_frames(pipeline, source, settings, already_done) as (items, summary.workers):
            for item in items:
                decoded = item if isinstance(item, Decoded) else None
                frame = decoded.frame if decoded is not None else item
                if cancel is not None and cancel.is_set():
                    summary.status = "stopped"
                    break
                if already_done(frame):
                    summary.skipped += 1
                    _sort_stored(source, frame, done.verdict(frame.sha256, frame.name))
                    if events.skipped:
                        events.skipped(frame)
                    continue
                decoded = decoded or decode(frame, min_side=decode_side(pipeline))
                result, image = decoded.inspected or inspect_frame(pipeline, frame, decoded)
                summary.read_cpu_s += decoded.read_cpu_ms / 1e3
                done.add(frame.sha256, frame.name, result.verdict)  # the same content twice in one run: once
                record, then = _record(frame, result, run_id, recipe_id, pipeline, source, forced_as, errored)
                writer.submit(record, image, has_file=frame.path is not None, then=then)
                summary.counts[result.verdict] += 1
                if events.result:
                    events.result(frame, result, image)
            else:
                # A live source asked to stop ends its frames: that is a stop, not the end.
                summary.status = "stopped" if cancel is not None and cancel.is_set() else "finished"
    except KeyboardInterrupt as exc:
        summary.status, problem = "stopped", exc
        raise
    except BaseException as exc:
        summary.status, problem = "failed", exc
        raise
    finally:
        summary.elapsed_s = time.perf_counter() - started
        try:
            writer.close()
        except BaseException as exc:  # e.g. a full disk: the results could not be written
            summary.status, problem = "failed", problem or exc
            raise
        finally:
            summary.store_s, summary.store_cpu_s = writer.busy_s, writer.busy_cpu_s
            summary.pictures_lost = writer.pictures_lost
            summary.counts.subtract(writer.stored_elsewhere)  # another run stored them first
            summary.skipped += sum(writer.stored_elsewhere.values())
            _finish(store, run_id, summary.status, problem)
    return summary


def _record(
    frame: Frame,
    result: InspectionResult,
    run_id: int,
    recipe_id: int,
    pipeline: InspectionPipeline,
    source: FrameSource,
    forced_as: str | None,
    errored: set[str],
) -> tuple[InspectionRecord, Callable[[], None] | None]:
    """What the writer is given for a result: its row, and what to do once it is stored
    (move the file where the source sorts it: the row names where it is going)."""
    destination = source.destination(frame, result.verdict)
    record = InspectionRecord(
        run_id,
        recipe_id,
        pipeline.recipe.name,
        # A file's name is stored absolute: reports made from another folder still find it.
        os.path.abspath(destination or frame.name) if frame.path is not None else frame.name,
        frame.sha256,
        result,
        utcnow(),
        result_key=result_key(frame.sha256, frame.name, result.verdict, forced_as=forced_as),
        # A file that changed after an ERROR (a writer pausing longer than the settling
        # time): its final state is its result, not one row per partial state.
        replaces_error=frame.name in errored,
    )
    (errored.add if result.verdict == ERROR else errored.discard)(frame.name)
    then = None if destination is None else (lambda: source.relocate(frame, destination))
    return record, then


def _sort_stored(source: FrameSource, frame: Frame, verdict: str) -> None:
    """A file whose result was stored but which was not moved yet (the run stopped in
    between) goes where its stored verdict sorts it."""
    destination = source.destination(frame, verdict)
    if destination is not None:
        try:
            source.relocate(frame, destination)
        except OSError as exc:
            log.warning("%s: inspected before, but could not be moved: %s", frame.name, exc.strerror or exc)


def _finish(store: Store, run_id: int, status: str, problem: BaseException | None) -> None:
    """Record how the run ended. Where it ended by a failure, a second failure here (the
    disk that filled up still full) is logged, not raised: it would hide the first."""
    try:
        with store.session() as session, session.begin():
            finish_run(session, run_id, status)
    except Exception as exc:
        if problem is None:
            raise
        log.warning("the run's end could not be recorded either: %s", exc)
