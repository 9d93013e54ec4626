"""The segmentation network behind one small protocol: torch or an ONNX Runtime export.

``FastSAMSegmenter`` does the pre- and postprocessing around a :class:`Network`; which
engine runs the forward pass is the network's business (anomalib's inferencers keep
torch, OpenVINO and ONNX apart the same way). Both take a preprocessed (1, 3, H, W)
tensor and return YOLOv8-seg's raw (predictions, prototypes).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Protocol

from inspector.engine.checkpoint import load_segmentation_module
from inspector.errors import EngineError


class Network(Protocol):
    """A loaded network: a forward pass, and copies of itself for other threads."""

    backend: str  # "torch" or "onnx"
    device: object  # the torch.device inputs go to
    half: bool  # whether inputs are half precision
    # Whether a pass runs on the calling thread's CPU thread count (torch; see
    # ``engine/threads.py``) rather than on a count fixed at loading (an ONNX session's).
    threads_from_caller: bool

    def __call__(self, tensor): ...

    def replica(self, *, threads: int | None = None) -> Network: ...


class TorchNetwork:
    """The weights' torch module, fused, in eval mode, in half precision on a GPU."""

    backend = "torch"
    threads_from_caller = True

    def __init__(self, module, device) -> None:
        self.device = device
        self.half = device.type == "cuda"
        self._module = module.half() if self.half else module

    @classmethod
    def load(cls, path: Path, device) -> TorchNetwork:
        module = load_segmentation_module(path)  # never runs code the file brings: see checkpoint.py
        try:
            module = module.fuse(verbose=False) if hasattr(module, "fuse") else module
        except Exception as exc:  # layers that do not fit together
            raise EngineError(f"cannot load {path} as a FastSAM model: {exc}") from exc
        return cls(module.to(device).eval(), device)

    def __call__(self, tensor):
        return self._module(tensor)

    def replica(self, *, threads: int | None = None) -> TorchNetwork:
        """A deep copy (the module keeps per-shape state between passes; not to be made
        during one); torch takes its thread count from the thread that runs it."""
        twin = copy.copy(self)
        twin._module = copy.deepcopy(self._module)
        return twin


class OnnxNetwork:
    """The ``inspector export`` of the weights, run by ONNX Runtime on the CPU."""

    backend = "onnx"
    threads_from_caller = False
    half = False

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # By default the runtime's threads spin after each run, waiting for the next one,
        # on the cores that registration, the rules and the next image need: on 2 cores a
        # pipeline image took 153-160 ms with spinning and 122-126 ms without.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EngineError(f"cannot load the ONNX export {path}: {exc}; export it again") from exc
        self._input = self._session.get_inputs()[0].name
        self.path = path
        self.device = torch.device("cpu")

    def __call__(self, tensor):
        import torch

        pred, proto = self._session.run(None, {self._input: tensor.cpu().numpy()})[:2]
        return torch.from_numpy(pred), torch.from_numpy(proto)

    def replica(self, *, threads: int | None = None) -> OnnxNetwork:
        """A session of its own, on ``threads`` CPU threads."""
        return OnnxNetwork(self.path, threads=threads)
