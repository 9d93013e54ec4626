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
        network.args = {"task": "segment", "imgsz": 1024}
        checkpoint = {"model": network.half(), "train_args": {"task": "segment"}, "version": ultralytics.__version__}
        torch.save(checkpoint, path)
    return path, False


def calibrated_conf(weights: Path, image, *, segments: int = 64, imgsz: int = 640) -> float:
    """The confidence threshold at which these weights give about ``segments`` segments.

    Random weights have no meaningful scores; thresholding them where a trained FastSAM
    would keep a typical number of segments makes every stage after the network (NMS,
    masks, prompts, rules) do as much work as it would with the real file.
    """
    from inspector.engine.segmenter import FastSAMSegmenter

    scores = FastSAMSegmenter(weights, device="cpu", conf=0.0, imgsz=imgsz, max_det=1000).segment(image).scores
    ranked = sorted(scores.tolist(), reverse=True)
    return float(ranked[min(segments, len(ranked)) - 1]) if ranked else 0.0
