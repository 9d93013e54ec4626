"""Network architectures for benchmarks: FastSAM-s with random weights when the file is absent.

FastSAM-s is a YOLOv8s-seg network with one class. Its speed does not depend on the
values of its weights, so a randomly initialised copy measures what the released file
would cost on the same machine, without a download.
"""

from __future__ import annotations

from pathlib import Path

from inspector.engine.weights import resolve_weights
from inspector.errors import EngineError


def fastsam_s_weights(folder: Path) -> tuple[Path, bool]:
    """FastSAM-s weights: the real file from the model folder, or a random-weight copy.

    Returns:
        (path, real): ``real`` is False when the weights are random.
    """
    try:
        return resolve_weights("FastSAM-s.pt").path, True
    except EngineError:
        pass
    import torch
    import ultralytics
    from ultralytics.nn.tasks import SegmentationModel

    path = Path(folder) / "FastSAM-s-architecture-random.pt"
    if not path.exists():
        torch.manual_seed(0)
        network = SegmentationModel("yolov8s-seg.yaml", nc=1, verbose=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": network.half(), "train_args": {}, "version": ultralytics.__version__}, path)
    return path, False
