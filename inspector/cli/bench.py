"""``inspector bench``: the pipeline beside the ultralytics baseline, with the targets' ratios."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from inspector.bench.dataset import SIZES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the pipeline against ultralytics' own FastSAM predictor",
        description=(
            "Measure, side by side on generated images at several sizes: ultralytics' FastSAM predict with "
            "retina masks plus its prompt step, the network alone, and Inspector's whole pipeline (stages "
            "p50 / p95, throughput, peak memory, cold start). Each measurement runs in its own process."
        ),
    )
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of {', '.join(SIZES)} (default: all)")
    p.add_argument("--images", type=int, default=20, help="images per size (default: 20)")
    p.add_argument(
        "--models",
        default="embedded,fastsam-s",
        help="embedded and/or fastsam-s (FastSAM-s from the model folder, else its architecture with random "
        "weights, which costs the same) (default: both)",
    )
    p.add_argument("--onnx", action="store_true", help="also measure the ONNX Runtime export (made if missing)")
    p.add_argument("--long", type=int, default=0, metavar="N", help="a long run of N images for memory drift")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="take turns this many times between the baseline, the network alone and the pipeline, "
        "pooling their samples (steadier figures on a shared machine) (default: 1)",
    )
    p.add_argument(
        "--register-ahead",
        type=int,
        default=None,
        metavar="N",
        help="inspect images one at a time (--workers 1) and register them to the reference on N threads "
        "beside the network (0: on the inference thread)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="inspect N images at once, each on a network of its own (1: one at a time) instead of "
        "the pipeline's own choice (2 on a CPU with two cores, half the CPU cores up to 8 on a CUDA GPU, "
        "otherwise 1); the network alone is also "
        "measured that way",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--work", type=Path, default=None, help="folder for the generated images (default: temporary)")
    p.add_argument("--json", type=Path, default=None, help="write the full results here")
    p.set_defaults(run=run)


def _models(names: str, work: Path):
    from inspector.bench.runner import Model
    from inspector.engine.architectures import calibrated_conf, fastsam_s_weights
    from inspector.errors import InspectorError
    from inspector.synthetic.demo_product import demo_reference

    models = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name == "embedded":
            models.append(Model("embedded", "inspector-seg-n", "YOLOv8n-seg trained on synthetic products"))
        elif name == "fastsam-s":
            path, real = fastsam_s_weights(work)
            if real:
                models.append(Model("FastSAM-s", str(path), "FastSAM-s.pt"))
                continue
            conf = calibrated_conf(path, demo_reference().image)
            note = (
                "FastSAM-s architecture (YOLOv8s-seg) with random weights, FastSAM-s.pt not being on this "
                f"machine; confidence threshold {conf:.3g} gives 64 segments per image"
            )
            models.append(Model("FastSAM-s*", str(path), note, conf))
        else:
            raise InspectorError(f"--models: unknown model {name!r}; use embedded and/or fastsam-s")
    return models


def run(args: argparse.Namespace) -> int:
    from inspector.bench.runner import benchmark, table
    from inspector.errors import InspectorError

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise InspectorError(f"--sizes: unknown size {unknown[0]!r}; use {', '.join(SIZES)}")
    if args.images < 2:
        raise InspectorError("--images: at least 2 images per size")
    if args.rounds < 1:
        raise InspectorError(f"--rounds: at least 1, got {args.rounds}")
    if args.workers is not None and args.workers < 1:
        raise InspectorError(f"--workers: at least 1, got {args.workers}")
    if args.register_ahead is not None and args.workers is None:
        args.workers = 1  # registering ahead is a way of inspecting one image at a time
    with tempfile.TemporaryDirectory(prefix="inspector-bench-") as scratch:
        work = args.work or Path(scratch)
        models = _models(args.models, work)
        if args.onnx:
            _ensure_exports(models)
        results = benchmark(
            work,
            sizes=sizes,
            images=args.images,
            models=models,
            device=args.device,
            onnx=args.onnx,
            long_run=args.long,
            rounds=args.rounds,
            register_ahead=args.register_ahead,
            workers=args.workers,
        )
    if args.json:  # first: minutes of measurements are not lost to a fault in the table
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    for model in models:
        if model.note:
            print(f"{model.name}: {model.note}")
    print(table(results))
    if args.json:
        print(f"results: {args.json}")
    return 1 if any("error" in r for r in results["runs"].values()) else 0


def _ensure_exports(models) -> None:
    from inspector.engine.exported import export_onnx, onnx_path
    from inspector.engine.weights import resolve_weights

    for model in models:
        weights = resolve_weights(model.weights)
        if not onnx_path(weights).is_file():
            print(f"exporting {model.name} to ONNX ...")
            export_onnx(weights)
