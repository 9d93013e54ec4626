"""Reading ahead of inspection: order, skipping, more work on several threads; how many."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from inspector.engine.image import write_image
from inspector.engine.segmenter import SegmenterRuntime
from inspector.errors import EngineError
from inspector.services import parallel
from inspector.services.read_ahead import read_ahead
from inspector.sources.files import FileSource


def test_reading_ahead_on_several_threads_keeps_the_order_and_registers_each_image(tmp_path):
    folder = tmp_path / "parts"
    for k in range(9):
        write_image(folder / f"p{k}.png", np.full((20 + k, 30, 3), 10 * k, np.uint8))
    registered = []

    def register(decoded):
        registered.append(decoded.picture.full_size)
        return replace(decoded, registration=("registered", decoded.picture.full_size))

    frames = FileSource([folder]).frames()
    decoded = list(read_ahead(frames, skip=lambda f: f.name.endswith("p4.png"), then=register, workers=3))
    assert [Path(d.frame.name).name for d in decoded] == [f"p{k}.png" for k in range(9)]
    assert decoded[4].image is None and decoded[4].registration is None  # skipped: neither decoded nor registered
    assert [d.registration for d in decoded if d.image is not None] == [
        ("registered", (30, 20 + k)) for k in range(9) if k != 4
    ]
    assert len(registered) == 8


class _Segmenter:
    """Says where its network runs (None: it could not be loaded) and how much GPU memory is free."""

    def __init__(self, device_type, *, copies=True, free=None):
        self.device_type, self.copies, self.free = device_type, copies, free

    def runtime(self):
        if self.device_type is None:
            raise EngineError("the network could not be loaded")
        return SegmenterRuntime("torch", self.device_type, replicable=self.copies)

    def free_device_memory(self):
        return self.free


class _Pipeline:
    def __init__(self, device_type, *, copies=True, free=None):
        self.segmenter = _Segmenter(device_type, copies=copies, free=free)


def test_images_are_registered_beside_the_network_only_where_it_leaves_the_cores_free(monkeypatch):
    monkeypatch.setattr(parallel, "_cores", lambda: 16)
    assert parallel.registration_workers(_Pipeline("cpu")) == 0  # the forward pass needs every core
    assert parallel.registration_workers(_Pipeline(None)) == 0  # no network: no guess
    assert parallel.registration_workers(_Pipeline("cuda")) == parallel.MAX_REGISTRATION_WORKERS
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    assert parallel.registration_workers(_Pipeline("cuda")) == 1


def test_a_cpu_inspects_two_images_at_once_when_it_has_the_threads_and_the_network_can_be_copied(monkeypatch):
    monkeypatch.setattr(parallel, "inference_threads", lambda: 2)
    assert parallel.inspection_workers(_Pipeline("cpu")) == 2
    assert parallel.inspection_workers(_Pipeline("cpu"), 3) == 3  # asked for
    assert parallel.inspection_workers(_Pipeline(None)) == 1  # no network: no guess
    assert parallel.inspection_workers(_Pipeline("cpu", copies=False), 2) == 1  # one network, one image at a time
    monkeypatch.setattr(parallel, "inference_threads", lambda: 1)
    assert parallel.inspection_workers(_Pipeline("cpu")) == 1  # a single thread: nothing to share
    monkeypatch.setattr(parallel, "inference_threads", lambda: 8)
    assert parallel.inspection_workers(_Pipeline("cpu")) == 1  # several threads per worker: unmeasured


def test_a_gpu_inspects_as_many_images_at_once_as_half_the_cores_and_its_memory_allow(monkeypatch):
    monkeypatch.setattr(parallel, "_cores", lambda: 16)
    assert parallel.inspection_workers(_Pipeline("cuda", free=70 << 30)) == 8
    assert parallel.inspection_workers(_Pipeline("cuda", copies=False, free=70 << 30)) == 1
    assert parallel.inspection_workers(_Pipeline("mps")) == 1  # unmeasured
    assert parallel.inspection_workers(_Pipeline("cuda", free=7 << 30)) == 3  # an 8 GB card
    assert parallel.inspection_workers(_Pipeline("cuda", free=1 << 30)) == 1
    # free memory that cannot be asked: the cores decide
    monkeypatch.setattr(parallel, "_cores", lambda: 64)
    assert parallel.inspection_workers(_Pipeline("cuda")) == parallel.MAX_GPU_INSPECTION_WORKERS
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    assert parallel.inspection_workers(_Pipeline("cuda")) == 1  # then registered ahead on the other core


def test_the_cores_counted_are_those_the_process_may_run_on(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 64)
    assert parallel._cores() == 3


def test_free_gpu_memory_is_unknown_on_a_cpu():
    from inspector.engine.segmenter import FastSAMSegmenter

    segmenter = FastSAMSegmenter(device="cpu")
    assert segmenter.free_device_memory() is None  # not loaded yet
    assert segmenter.runtime().device_type == "cpu"  # loads it
    assert segmenter.free_device_memory() is None  # a CPU has no GPU memory to share out


class _CopyablePipeline:
    """Counts its copies; once loaded, its network takes its threads from the caller, or
    not (as FastSAMSegmenter, which knows only once loading finds an ONNX export or not)."""

    def __init__(self, threads_from_caller):
        self._runtime = SegmenterRuntime("torch" if threads_from_caller else "onnx", "cpu", threads_from_caller, True)
        self.segmenter = type("Segmenter", (), {"runtime": lambda _: self._runtime})()
        self.copies = []

    def worker_copy(self, *, threads=None):
        twin = _CopyablePipeline(self._runtime.threads_from_caller)
        self.copies.append(twin)
        return twin


def test_a_torch_pipeline_serves_one_worker_itself_and_an_onnx_one_only_copies(monkeypatch):
    import threading

    monkeypatch.setattr(parallel, "set_inference_threads", lambda n: None)
    for from_caller in (True, False):
        pipeline = _CopyablePipeline(from_caller)
        per_thread = parallel.PipelinePerThread(pipeline, copies=2, threads=1)
        assert len(pipeline.copies) == (1 if from_caller else 2)  # made up front
        given = []

        def work(per_thread=per_thread, given=given):
            given.append(per_thread())

        workers = [threading.Thread(target=work) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len({id(p) for p in given}) == 2  # a pipeline per thread
        assert (pipeline in given) == from_caller
        assert all(p is pipeline or p in pipeline.copies for p in given)
