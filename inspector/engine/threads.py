"""Threads: numpy's BLAS kept off the cores the network needs, and torch's per thread."""

from __future__ import annotations

import threading

_limited = False
_lock = threading.Lock()


def limit_blas_threads() -> None:
    """Give numpy's (and OpenCV's) OpenBLAS one thread, once per process.

    OpenBLAS runs a matrix product on a thread per core and leaves those threads spinning
    for a while afterwards. The pipeline's products are small (masks on the network's
    low-resolution grid) and gain nothing from more threads, while the spinning threads
    take the cores from the forward pass that comes next: on 2 cores the forward pass ran
    20-30 % slower inside the pipeline than alone until BLAS was held to one thread.
    torch's own thread pool is not affected.
    """
    global _limited
    with _lock:
        if _limited:
            return
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _limited = True


def inference_threads() -> int:
    """The CPU threads torch runs an operation on, from the calling thread."""
    import torch

    return torch.get_num_threads()


def set_inference_threads(count: int) -> None:
    """Run torch's CPU operations of the calling thread on ``count`` threads.

    torch keeps the count per thread (OpenMP), but also remembers it for threads that
    start later: whoever sets it for a pool of threads restores it afterwards.
    """
    import torch

    torch.set_num_threads(max(1, int(count)))
