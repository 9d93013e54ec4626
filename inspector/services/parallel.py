"""Work beside the network: how many threads do it, and with which pipeline.

Where the network runs on a GPU, a forward pass takes a few milliseconds and the CPU
work around it (reading, registration, rules) is what the images wait for. A folder run
there inspects images whole on several threads at once, half as many as there are CPU
cores, each with a copy of the network on the GPU: on an H100 with 16 cores, 8 at once
gave 12 / 11 ms per image at 0.3 / 12 MP, against 22 / 26 ms with one image at a time
and registration on 4 threads ahead of it (benchmarks/README.md). Each copy needs GPU
memory for its activations, so a smaller GPU gets fewer. With fewer than 4 cores images
are inspected one at a time and registered ahead on the cores left.

On a CPU a forward pass can use every core, but not well: on two cores, two forward
passes side by side, each on one core, get through 1.3-1.4 times the images of one pass
on both cores (benchmarks/README.md). So a folder run on a CPU of two cores inspects
images whole on two threads at once, each with a network of its own on one core (with
torch, the pipeline's and a copy); the loop still stores the results in the frames'
order. A live source is inspected one frame at a time, as soon as it comes: there, the
time to one result counts, not the rate.
"""

from __future__ import annotations

import os
import threading

from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.segmenter import SegmenterRuntime
from inspector.engine.threads import inference_threads, set_inference_threads
from inspector.errors import InspectorError

MAX_REGISTRATION_WORKERS = 4
INSPECTION_WORKERS = 2  # measured on two cores; more cores may gain from more
MAX_GPU_INSPECTION_WORKERS = 8  # measured on 16 cores beside one H100
# Free GPU memory set aside for each worker on a GPU: an allowance, not a measurement,
# meant to hold a FastSAM-x copy and its activations at 1024 px in half precision with
# room to spare. An 8 GB card gets 3 workers.
GPU_MEMORY_PER_WORKER = 2 << 30


def _cores() -> int:
    """The CPU cores this process may run on (a container or affinity mask may allow
    fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def runtime_of(pipeline: InspectionPipeline) -> SegmenterRuntime | None:
    """The pipeline's network as loaded; None where it could not be loaded (each image
    then gets that ERROR, one at a time)."""
    try:
        return pipeline.segmenter.runtime()
    except InspectorError:
        return None


def registration_workers(pipeline: InspectionPipeline) -> int:
    """Threads that read and register images ahead of the network; 0: registered inline.

    Only where the network runs on a GPU: on a CPU the cores are the network's (see
    ``inspection_workers``). Decides after the network is loaded (``decode_side``
    loads it).
    """
    runtime = runtime_of(pipeline)
    if runtime is None or runtime.device_type not in ("cuda", "mps"):
        return 0
    return max(0, min(MAX_REGISTRATION_WORKERS, _cores() // 2))


def inspection_workers(pipeline: InspectionPipeline, asked: int | None = None) -> int:
    """Images a folder run inspects at once: ``asked``, or by default 2 where the network
    runs on a CPU with 2 or 3 threads, half the CPU cores (at most 8, and one per
    ``GPU_MEMORY_PER_WORKER`` of free GPU memory) where it runs on a CUDA GPU; 1 where the
    network cannot be copied (see ``FastSAMSegmenter.replica``).

    On a CPU with more threads each worker would run its network on several, each worker
    with a pool of OpenMP threads besides the loading thread's: more threads than cores,
    which measured slower on two cores (benchmarks/README.md) and is unmeasured on more.
    """
    runtime = runtime_of(pipeline)
    if runtime is None or not runtime.replicable:
        return 1
    if asked is not None:
        return max(1, asked)
    if runtime.device_type == "cuda":
        free = pipeline.segmenter.free_device_memory()
        room = MAX_GPU_INSPECTION_WORKERS if free is None else free // GPU_MEMORY_PER_WORKER
        return max(1, min(MAX_GPU_INSPECTION_WORKERS, _cores() // 2, room))
    if runtime.device_type != "cpu":
        return 1
    return INSPECTION_WORKERS if inference_threads() // INSPECTION_WORKERS == 1 else 1


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` networks' share of the threads one network has."""
    return max(1, inference_threads() // max(1, workers))


class PipelinePerThread:
    """Gives each calling thread a pipeline of its own, its network on ``threads`` CPU
    threads: ``copies`` of them, the first of which may be ``pipeline`` itself.

    A torch network runs on the calling thread's thread count, so the pipeline's own
    network serves one thread and one copy fewer is made and held (for FastSAM-x, 270 MB
    of weights). An ONNX session keeps the thread count it was made with, so each thread
    gets a copy (``InspectionPipeline.worker_copy``).

    The pipelines are made up front, on the calling thread, so that one that cannot be
    made is known before any image is inspected: this raises what ``worker_copy``
    raises (e.g. for a reference that cannot be prepared).
    """

    def __init__(self, pipeline: InspectionPipeline, *, copies: int, threads: int) -> None:
        self._threads = max(1, threads)
        # The loaded network's backend decides whether the pipeline itself serves a thread.
        own = [pipeline] if copies > 0 and pipeline.segmenter.runtime().threads_from_caller else []
        self._spare = own + [pipeline.worker_copy(threads=self._threads) for _ in range(copies - len(own))]
        self._pipeline = pipeline
        self._local = threading.local()
        self._lock = threading.Lock()

    def __call__(self) -> InspectionPipeline:
        mine = getattr(self._local, "pipeline", None)
        if mine is None:
            set_inference_threads(self._threads)
            with self._lock:
                mine = self._spare.pop() if self._spare else self._pipeline.worker_copy(threads=self._threads)
            self._local.pipeline = mine
        return mine
