"""An exported CPU engine for the segmenter: ONNX Runtime.

``inspector export`` writes ``<model folder>/exports/<name>-<sha256 prefix>.onnx`` from
the weights with ultralytics' exporter (dynamic input size, so every image keeps its own
aspect ratio). The segmenter uses it on the CPU when it is present and onnxruntime is
installed (``engine/networks.py``); the file name ties it to the exact weights it came from.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from inspector import settings
from inspector.engine.checkpoint import read_checkpoint
from inspector.engine.weights import ResolvedWeights
from inspector.errors import EngineError


def export_dir() -> Path:
    return settings.model_dir() / "exports"


def onnx_path(weights: ResolvedWeights) -> Path:
    """Where the ONNX export of these exact weights lives."""
    return export_dir() / f"{weights.path.stem}-{weights.identity.sha256[:12]}.onnx"


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(weights: ResolvedWeights, *, imgsz: int = 640) -> Path:
    """Export the weights to ONNX (dynamic height and width) next to the other exports."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_AUTOINSTALL"] = "0"
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise EngineError("exporting needs the onnx package: pip install onnx onnxruntime") from None
    from ultralytics import YOLO

    target = onnx_path(weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    # ultralytics writes beside its input; the installed model folder may be read-only.
    with tempfile.TemporaryDirectory(prefix="inspector-export-") as work:
        source = Path(work) / weights.path.name
        shutil.copyfile(weights.path, source)
        read_checkpoint(source)  # the copy ultralytics loads, refused if it would run code (checkpoint.py)
        try:
            exported = YOLO(str(source)).export(format="onnx", dynamic=True, simplify=False, imgsz=imgsz, device="cpu")
        except Exception as exc:  # the exporter raises many kinds
            raise EngineError(f"ONNX export of {weights.path} failed: {exc}") from exc
        shutil.move(str(exported), target)
    return target
