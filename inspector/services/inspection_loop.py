"""The inspection loop: frames from a source, through the pipeline, into the store.

Frames stream one at a time; results go to a writer thread so storing never stalls
inference. Images already inspected with the same recipe and model (by content hash)
are skipped unless forced, which is also how a killed run resumes without duplicates.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.types import InspectionResult
from inspector.errors import InspectorError
from inspector.services.read_ahead import Decoded, decode, read_ahead
from inspector.services.writer import Pending, ResultWriter
from inspector.sources.frame import Frame
from inspector.store.database import Store
from inspector.store.repository import finish_run, inspected_images, recipe_snapshot, start_run

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: int
    counts: Counter = field(default_factory=Counter)  # PASS / FAIL / ERROR
    skipped: int = 0
    elapsed_s: float = 0.0
    store_s: float = 0.0  # writer thread time: pictures and database rows
    store_cpu_s: float = 0.0  # the writer thread's CPU time for them
    read_cpu_s: float = 0.0  # CPU time reading and decoding images
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


MAX_REGISTRATION_WORKERS = 4


def registration_workers(pipeline: InspectionPipeline) -> int:
    """Threads that read and register images ahead of the network; 0: registered inline.

    Where the network runs on a GPU the CPU cores are free while it runs, so images are
    registered beside it, several at once. On a CPU the forward pass uses every core:
    registering beside it slows it down by about as much as it saves (measured on two
    cores, see benchmarks/README.md), so images are registered on the inference thread.
    Decides after the network is loaded (``decode_side`` loads it).
    """
    if getattr(pipeline.segmenter, "device_type", None) in (None, "cpu"):
        return 0
    return max(0, min(MAX_REGISTRATION_WORKERS, (os.cpu_count() or 1) // 2))


def inspect_frame(
    pipeline: InspectionPipeline, frame: Frame, decoded: Decoded
) -> tuple[InspectionResult, np.ndarray | None]:
    """One frame's result (never an exception) and its decoded pixels, if it had any."""
    read_ms, image = decoded.read_ms, decoded.image
    if image is None:
        return pipeline.error_result(decoded.error or f"{frame.name}: no image", {"read": read_ms}), None
    try:
        result = pipeline.inspect(image, full_size=decoded.full_size, registration=decoded.registration)
        return result.with_timing("read", read_ms), image
    except InspectorError as exc:
        return pipeline.error_result(str(exc), {"read": read_ms}), image
    except Exception as exc:  # a bug must not stop the line: log it, record it, go on
        log.exception("inspecting %s failed", frame.name)
        return pipeline.error_result(f"internal error while inspecting {frame.name}: {exc!r}", {"read": read_ms}), image


def _open_run(
    pipeline: InspectionPipeline, store: Store, *, source: str, station: str | None, force: bool, settings: dict
) -> tuple[int, int, set[str]]:
    """Store the recipe and a run row; returns their ids and the images already done."""
    model = pipeline.model
    with store.session() as session, session.begin():
        recipe_id = recipe_snapshot(session, pipeline.recipe)
        run_id = start_run(
            session,
            recipe_id=recipe_id,
            model=model,
            station=station or socket.gethostname(),
            source=source,
            settings=settings,
        )
        done = (
            set() if force else inspected_images(session, recipe_sha256=pipeline.recipe_hash, model_sha256=model.sha256)
        )
    return recipe_id, run_id, done


# (frame, result, decoded image or None when it could not be read)
ResultCallback = Callable[[Frame, InspectionResult, np.ndarray | None], None]


def run_inspection(
    pipeline: InspectionPipeline,
    store: Store,
    frames: Iterable[Frame],
    *,
    source: str,
    station: str | None = None,
    force: bool = False,
    save_overlays: bool = True,
    save_frames: str = "fail",
    relocate: Callable[[Frame, str], object] | None = None,
    on_result: ResultCallback | None = None,
    on_skip: Callable[[Frame], None] | None = None,
    cancel: threading.Event | None = None,
    read_ahead_depth: int = 0,
    register_ahead: int | None = None,
) -> RunSummary:
    """Inspect every frame once and store the results.

    Args:
        pipeline: the recipe's pipeline (its model is loaded on first use).
        store: the open results database.
        frames: the source's frames, consumed lazily.
        source: a description of the source for the run row.
        station: the station name (the host name by default).
        force: inspect images again even if this recipe and model already have.
        save_overlays: write overlay pictures and defect crops of FAIL images.
        save_frames: for sources without files (cameras): keep frames of "fail" results,
            "all" frames, or "none".
        relocate: called with each frame and its verdict; may move the file and return
            its new path, which is what the database records.
        on_result: called on the inspection thread after each result, with the decoded image
            (which may be smaller than the frame: see ``InspectionPipeline.decode_side``;
            ``InspectionResult.findings_at`` puts the findings on it).
        on_skip: called for each frame skipped as already inspected.
        cancel: set it to stop after the current frame.
        read_ahead_depth: for finite sources (files), read and decode this many images
            ahead on another thread, so that reading overlaps with inference.
        register_ahead: while reading ahead, register images to the reference on this
            many threads (0: on the inference thread); None decides by where the network
            runs (see ``registration_workers``).
    """
    recipe = pipeline.recipe
    recipe_id, run_id, done = _open_run(
        pipeline,
        store,
        source=source,
        station=station,
        force=force,
        settings={
            "force": force,
            "save_overlays": save_overlays,
            "save_frames": save_frames,
            # which engine ran the network (torch or an ONNX export of the same weights)
            "backend": getattr(pipeline.segmenter, "backend", None),
        },
    )
    summary = RunSummary(run_id=run_id)
    writer = ResultWriter(store, store.images_dir, save_overlays=save_overlays, save_frames=save_frames)
    started = time.perf_counter()

    def already_done(frame: Frame) -> bool:
        return frame.sha256 is not None and frame.sha256 in done

    items: Iterable[Frame | Decoded] = frames
    if read_ahead_depth:
        side = decode_side(pipeline)
        workers = registration_workers(pipeline) if register_ahead is None else register_ahead
        register = (lambda image, size: pipeline.register(image, full_size=size)) if workers else None
        items = read_ahead(
            frames, skip=already_done, depth=read_ahead_depth, min_side=side, register=register, workers=workers
        )
    try:
        for item in items:
            decoded = item if isinstance(item, Decoded) else None
            frame = decoded.frame if decoded is not None else item
            if cancel is not None and cancel.is_set():
                summary.status = "stopped"
                break
            if already_done(frame):
                summary.skipped += 1
                if on_skip:
                    on_skip(frame)
                continue
            decoded = decoded or decode(frame, min_side=decode_side(pipeline))
            result, image = inspect_frame(pipeline, frame, decoded)
            summary.read_cpu_s += decoded.read_cpu_ms / 1e3
            if frame.sha256 is not None:
                done.add(frame.sha256)  # the same content twice in one run is inspected once
            name = frame.name
            if relocate is not None:  # e.g. a hot folder sorting files into pass/ fail/ error/
                moved = relocate(frame, result.verdict)
                name = str(moved) if moved is not None else name
            pending = Pending(
                run_id, recipe_id, recipe.name, name, frame.sha256, result, image, stored_file=frame.path is not None
            )
            writer.submit(pending)
            summary.counts[result.verdict] += 1
            if on_result:
                on_result(frame, result, image)
        else:
            summary.status = "finished"
    except KeyboardInterrupt:
        summary.status = "stopped"
        raise
    except BaseException:
        summary.status = "failed"
        raise
    finally:
        summary.elapsed_s = time.perf_counter() - started
        if read_ahead_depth:
            items.close()  # stops the reading thread
        try:
            writer.close()
        finally:
            summary.store_s, summary.store_cpu_s = writer.busy_s, writer.busy_cpu_s
            with store.session() as session, session.begin():
                finish_run(session, run_id, summary.status)
    return summary
