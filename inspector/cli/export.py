"""``inspector export``: an ONNX Runtime engine of the segmenter for CPUs."""

from __future__ import annotations

import argparse

from inspector.cli.arguments import input_size


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export the segmenter to ONNX for faster CPU inference",
        description=(
            "Export the weights to ONNX. The export is stored in the model folder under a name tied to "
            "the weights' hash and used automatically on the CPU when onnxruntime is installed "
            "(choose with --backend on run / segment / bench)."
        ),
    )
    p.add_argument("--weights", default=None, help="weights to export (default: the embedded model)")
    p.add_argument("--imgsz", type=input_size, default=640, help="image size the export is traced at (default: 640)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from inspector.engine.exported import export_onnx
    from inspector.engine.weights import resolve_weights

    weights = resolve_weights(args.weights)
    path = export_onnx(weights, imgsz=args.imgsz)
    print(f"exported {weights.path.name} ({weights.identity.sha256[:12]}) to {path}")
    return 0
