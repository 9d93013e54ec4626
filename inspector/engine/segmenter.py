"""FastSAM "segment everything" through ultralytics, behind a small protocol.

The network is loaded lazily, once, on first use; each call runs three
separately timed stages in the manner of ultralytics' predictor (preprocess, inference,
postprocess), but returns masks at prototype resolution only: full-resolution masks are
built later, per reported instance (:meth:`Segmentation.full_mask`).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from inspector.engine.networks import Network, OnnxNetwork, TorchNetwork
from inspector.engine.types import ModelIdentity, Segmentation
from inspector.engine.weights import resolve_weights
from inspector.errors import EngineError

Device = Literal["auto", "cpu", "cuda", "mps"]
Backend = Literal["auto", "torch", "onnx"]
BACKENDS: tuple[Backend, ...] = ("auto", "torch", "onnx")
_STRIDE = 32
_PROTO_STRIDE = 4  # YOLOv8-seg prototypes are a quarter of the input size
_PAD_VALUE = 114  # the letterbox gray ultralytics trains with


@dataclass(frozen=True)
class SegmenterRuntime:
    """What a loaded segmenter is and can do, for those who plan work around it.

    Attributes:
        backend: the engine that runs the network ("torch", "onnx"; a stand-in names itself).
        device_type: where it runs: "cpu", "cuda" or "mps"; anything else (a stand-in)
            is inspected one image at a time.
        threads_from_caller: whether a pass runs on the calling thread's CPU thread count
            (torch; see ``engine/threads.py``) rather than on a count fixed at loading.
        replicable: whether :meth:`Segmenter.replica` makes a copy that can run beside it.
    """

    backend: str
    device_type: str
    threads_from_caller: bool = True
    replicable: bool = False


@runtime_checkable
class Segmenter(Protocol):
    """Anything that segments every instance in a BGR image."""

    @property
    def identity(self) -> ModelIdentity: ...

    def runtime(self) -> SegmenterRuntime:
        """The loaded network's description (loads it first)."""
        ...

    def replica(self, *, threads: int | None = None) -> Segmenter:
        """The same network for another thread to run beside this one; EngineError where
        ``runtime().replicable`` is false."""
        ...

    def free_device_memory(self) -> int | None:
        """Bytes free on the GPU the network runs on; None on a CPU or where unknown."""
        ...

    def segment(
        self,
        image: np.ndarray,
        *,
        imgsz: int | None = None,
        conf: float | None = None,
        iou: float | None = None,
        original_size: tuple[int, int] | None = None,
    ) -> Segmentation: ...


def pick_device(requested: Device):
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' was asked for, but no CUDA GPU is available")
    return torch.device(requested)


def import_runtime() -> None:
    """Import torch and ultralytics now.

    Importing them holds Python's interpreter lock for seconds in long uninterruptible
    steps; a GUI does it before its window appears rather than while a run starts.
    """
    import torch  # noqa: F401

    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_AUTOINSTALL"] = "0"
    from ultralytics import FastSAM  # noqa: F401


def describe_device(requested: Device = "auto") -> str:
    """The device a request resolves to, in words (GPU model, or CPU and torch threads)."""
    import torch

    device = pick_device(requested)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA, torch {torch.__version__})"
    return f"{device.type} (torch {torch.__version__})"


def non_max_suppression(boxes, scores, iou: float, max_det: int | None = None) -> np.ndarray:
    """Indices of the boxes (with positive scores) greedy NMS keeps, best first, at most
    ``max_det`` of them (OpenCV, on the CPU).

    torchvision's ``nms`` keeps the same, but importing torchvision pulls in torch's
    compiler stack: about 3 seconds of a cold start on a small CPU.

    A FastSAM-sized network can pass thousands of candidates, of which a thousand
    survive, while only the best ``max_det`` are wanted; OpenCV goes through them all
    (18-20 ms for 6,300 candidates on the benchmark machine). Greedy NMS decides each
    box by the better-scored ones alone, so it runs on the best few first, and on more
    only while they keep fewer than ``max_det``: the same boxes, in a fraction of the time.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xyxy = boxes.float().cpu().numpy().astype(np.float64)
    xywh = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    confidence = scores.float().cpu().numpy()
    ranked = np.argsort(-confidence, kind="stable")  # as OpenCV ranks them: ties by index
    count = len(ranked)
    take = count if max_det is None else min(count, 4 * max_det)
    while True:
        best = ranked[:take]
        keep = cv2.dnn.NMSBoxes(xywh[best].tolist(), confidence[best].tolist(), 0.0, float(iou))
        kept = best[np.asarray(keep, np.int64).reshape(-1)]
        if max_det is None or len(kept) >= max_det or take == count:
            return kept[:max_det]
        take = min(count, 4 * take)


class FastSAMSegmenter:
    """FastSAM (or the embedded model of the same family) run through ultralytics.

    Args:
        weights: embedded model name, path, or file name in the model folder (see
            :func:`inspector.engine.weights.resolve_weights`).
        device: ``"auto"`` picks CUDA, then Apple MPS, then the CPU.
        imgsz, conf, iou: defaults for :meth:`segment`.
        max_det: most instances kept per image.
        expected_sha256: refuse weights whose hash differs.
        allow_download: let ultralytics fetch a FastSAM release that is not on disk.
        backend: ``"torch"``; ``"onnx"`` (the ``inspector export`` of these weights, on
            the CPU with ONNX Runtime); ``"auto"`` uses the export when it exists and
            the device is the CPU.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        device: Device = "auto",
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 200,
        expected_sha256: str | None = None,
        allow_download: bool = False,
        backend: Backend = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise EngineError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        # Resolving (and hashing) is cheap and fails fast; the network loads on first use.
        self._weights = resolve_weights(weights, expected_sha256=expected_sha256, allow_download=allow_download)
        self._device_request = device
        self._backend_request = backend
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self._network: Network | None = None
        self._load_lock = threading.Lock()
        # One forward at a time through this instance (see ``replica`` for more).
        self._run_lock = threading.Lock()

    @property
    def identity(self) -> ModelIdentity:
        return self._weights.identity

    def _exported(self, device) -> Path | None:
        """The ONNX export to run instead of torch, if the backend setting asks for one."""
        from inspector.engine.exported import onnx_path, onnxruntime_available

        path = onnx_path(self._weights)
        if self._backend_request == "torch":
            return None
        if self._backend_request == "onnx":
            if device.type != "cpu":
                raise EngineError("the ONNX backend runs on the CPU; use --device cpu or the torch backend")
            if not onnxruntime_available():
                raise EngineError("the ONNX backend needs onnxruntime: pip install onnxruntime")
            if not path.is_file():
                raise EngineError(
                    f"no ONNX export of {self._weights.path.name} at {path}; run `inspector export` first"
                )
            return path
        return path if device.type == "cpu" and path.is_file() and onnxruntime_available() else None

    @property
    def loaded(self) -> bool:
        return self._network is not None

    def runtime(self) -> SegmenterRuntime:
        self.load()
        network = self._network
        return SegmenterRuntime(
            backend=network.backend,
            device_type=network.device.type,
            threads_from_caller=network.threads_from_caller,
            replicable=True,
        )

    def free_device_memory(self) -> int | None:
        """Bytes free on the GPU the network runs on; None on a CPU, before loading, or
        where the driver does not say."""
        if self._network is None or self._network.device.type != "cuda":
            return None
        import torch

        device = self._network.device
        try:
            free = torch.cuda.mem_get_info(device)[0]
            # What torch holds in its cache from earlier work is free to this process too.
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        except RuntimeError:
            return None
        return int(free + cached)

    def load(self) -> None:
        """Load the network now instead of on the first image.

        No warm-up pass: the first pass at a new input shape pays for choosing its
        kernels, so a pass on a stand-in image warmed up only itself (about 0.2 s of a
        CPU cold start, saving some 40 ms of the first real image). The pipeline's first
        pass, on the reference, is at the images' shape.
        """
        with self._load_lock:
            if self._network is not None:
                return
            # Before ultralytics is first imported: no update checks or telemetry, and
            # never a pip install at run time, whatever the environment says.
            os.environ.setdefault("YOLO_OFFLINE", "1")
            os.environ["YOLO_AUTOINSTALL"] = "0"
            device = pick_device(self._device_request)
            exported = self._exported(device)
            if exported is not None:
                import torch

                self._network = OnnxNetwork(exported, threads=torch.get_num_threads())
            else:
                self._network = TorchNetwork.load(self._weights.path, device)

    def replica(self, *, threads: int | None = None) -> FastSAMSegmenter:
        """The same network for another thread to run at the same time as this one.

        Each replica has its own copy of the network (the torch module keeps per-shape
        state between calls; an ONNX export gets a session of its own) and its own run
        lock. ``threads``: the CPU threads of an ONNX replica's session; torch takes its
        thread count from the thread that runs it (see ``engine/threads.py``).
        """
        self.load()
        twin = copy.copy(self)
        twin._load_lock, twin._run_lock = threading.Lock(), threading.Lock()
        with self._run_lock:  # not copied in the middle of a pass
            twin._network = self._network.replica(threads=threads)
        return twin

    # -- stages ------------------------------------------------------------------------

    def _preprocess(self, image: np.ndarray, imgsz: int):
        """Resize to fit ``imgsz``, pad bottom/right to the stride, to an RGB tensor."""
        import torch

        h, w = image.shape[:2]
        ratio = min(imgsz / h, imgsz / w)
        new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        resized = image
        if (new_w, new_h) != (w, h):
            resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        pad_w, pad_h = -new_w % _STRIDE, -new_h % _STRIDE
        # Padding only at the bottom and right keeps the image at the origin of the
        # prototype grid, so image -> mask coordinates is a single scale factor.
        padded = cv2.copyMakeBorder(resized, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(_PAD_VALUE,) * 3)
        network = self._network
        tensor = torch.from_numpy(np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1))).to(network.device)
        tensor = (tensor.half() if network.half else tensor.float()) / 255.0
        return tensor[None], ratio, (new_w, new_h)

    def _postprocess(self, raw, ratio: float, valid: tuple[int, int], image_size, conf: float, iou: float):
        import torch

        (pred, proto) = raw[0] if isinstance(raw[0], tuple) else raw
        pred = pred[0].float().T  # (anchors, 4 + classes + 32)
        proto = proto[0].float()  # (32, hp, wp)
        n_coef = proto.shape[0]
        scores, _ = pred[:, 4:-n_coef].max(dim=1)
        keep = scores > conf
        pred, scores = pred[keep], scores[keep]
        xy, wh = pred[:, :2], pred[:, 2:4]
        boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
        order = torch.as_tensor(non_max_suppression(boxes, scores, iou, self.max_det), device=boxes.device)
        boxes, scores, coefs = boxes[order], scores[order], pred[order, -n_coef:]

        # Masks on the prototype grid, cut to the image area (bottom/right padding off).
        hv = int(np.ceil(valid[1] / _PROTO_STRIDE))
        wv = int(np.ceil(valid[0] / _PROTO_STRIDE))
        protos = proto[:, :hv, :wv].reshape(n_coef, -1)
        logits = (coefs @ protos).reshape(-1, hv, wv)
        # Like ultralytics, a mask lives inside its box: rows and columns are tested
        # apart and crossed once, rather than four comparisons over every mask pixel.
        lb = boxes / _PROTO_STRIDE
        cols = torch.arange(wv, device=logits.device, dtype=logits.dtype) + 0.5
        rows = torch.arange(hv, device=logits.device, dtype=logits.dtype) + 0.5
        in_cols = (cols >= lb[:, 0, None]) & (cols <= lb[:, 2, None])
        in_rows = (rows >= lb[:, 1, None]) & (rows <= lb[:, 3, None])
        inside = in_rows[:, :, None] & in_cols[:, None, :]
        # A probability above one half is a logit above zero: the sigmoid is taken only
        # for the masks that are kept.
        masks = (logits > 0) & inside
        nonempty = masks.flatten(1).any(dim=1)
        probs = logits[nonempty].sigmoid() * inside[nonempty]
        width, height = image_size
        boxes = boxes[nonempty] / ratio
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, height)
        return (
            boxes.cpu().numpy().astype(np.float32),
            scores[nonempty].cpu().numpy().astype(np.float32),
            masks[nonempty].cpu().numpy(),
            # to half precision where the masks are (torch converts several times faster
            # than numpy, and a GPU sends half the bytes)
            probs.half().cpu().numpy(),
        )

    def segment(
        self,
        image: np.ndarray,
        *,
        imgsz: int | None = None,
        conf: float | None = None,
        iou: float | None = None,
        original_size: tuple[int, int] | None = None,
    ) -> Segmentation:
        """Segment every instance of a BGR uint8 image.

        Args:
            image: (H, W, 3) uint8 BGR.
            original_size: (width, height) of the image ``image`` was shrunk from, when the
                caller shrank it already (e.g. while aligning it); the segmentation is
                then in the original's pixels.
            imgsz: longest side of the network input (a multiple of 32 works best).
            conf: minimum instance confidence.
            iou: NMS overlap threshold.
        """
        import torch

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise EngineError(f"segment() needs an (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
        imgsz = int(imgsz or self.imgsz)
        if imgsz < _STRIDE:
            raise EngineError(f"imgsz {imgsz} is too small; use at least {_STRIDE}")
        conf = self.conf if conf is None else conf
        iou = self.iou if iou is None else iou
        self.load()
        h, w = image.shape[:2]
        size = original_size or (w, h)
        shrunk = w / size[0]  # how much smaller than the original (the same on both axes)
        with self._run_lock, torch.inference_mode():
            t0 = time.perf_counter()
            tensor, ratio, valid = self._preprocess(image, imgsz)
            ratio *= shrunk  # network pixels per original pixel
            t1 = time.perf_counter()
            raw = self._network(tensor)
            if tensor.device.type == "cuda":
                torch.cuda.synchronize(tensor.device)  # time the forward, not its launch
            t2 = time.perf_counter()
            boxes, scores, masks, probs = self._postprocess(raw, ratio, valid, size, conf, iou)
            t3 = time.perf_counter()
        scale = ratio / _PROTO_STRIDE
        return Segmentation(
            image_size=size,
            scale=scale,
            boxes=boxes,
            scores=scores,
            masks=masks,
            probabilities=probs,
            timings={
                "preprocess": (t1 - t0) * 1e3,
                "inference": (t2 - t1) * 1e3,
                "postprocess": (t3 - t2) * 1e3,
            },
        )


# Networks kept loaded, most recently used last: the one cache of models in a process, so
# that the Recipes tab's preview, its test runs and Operate's runs of one recipe share a
# network, and switching between two products does not load either again.
SHARED_NETWORKS = 2
_shared: OrderedDict[tuple, FastSAMSegmenter] = OrderedDict()
_shared_lock = threading.Lock()


def shared_segmenter(
    weights: str | os.PathLike | None = None,
    *,
    device: Device = "auto",
    backend: Backend = "auto",
    expected_sha256: str | None = None,
) -> FastSAMSegmenter:
    """The process's segmenter of these weights (file and content) on this device and backend,
    made on first use; the least recently used beyond ``SHARED_NETWORKS`` is let go.

    A segmenter runs one image at a time (see ``FastSAMSegmenter.replica`` for more); its
    prompts and settings are arguments of each call, so callers cannot disturb each other.
    """
    resolved = resolve_weights(weights, expected_sha256=expected_sha256)
    key = (str(resolved.path), resolved.identity.sha256, device, backend)
    with _shared_lock:
        segmenter = _shared.pop(key, None)
        if segmenter is None:
            segmenter = FastSAMSegmenter(weights, device=device, backend=backend, expected_sha256=expected_sha256)
        _shared[key] = segmenter
        while len(_shared) > SHARED_NETWORKS:
            _shared.popitem(last=False)
        return segmenter
