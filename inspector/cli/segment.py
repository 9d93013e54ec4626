"""``inspector segment IMAGE``: segment everything, or what the prompts select."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from inspector.cli.arguments import input_size
from inspector.engine.image import read_image, write_image
from inspector.engine.overlay import draw_prompts, draw_regions
from inspector.engine.prompts import POINT_MODES, select_segments, select_text
from inspector.errors import InspectorError


def _coordinates(parts: list[str]) -> tuple[float, ...] | None:
    """Finite numbers, or None (nan or inf would pass float() and fail deep in selection)."""
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        return None
    return values if all(np.isfinite(values)) else None


def _point(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    xy = _coordinates(parts[:2])
    if xy is not None and len(parts) == 2:
        return xy[0], xy[1], 1
    if xy is not None and len(parts) == 3 and parts[2].strip() in ("0", "1"):
        return xy[0], xy[1], int(parts[2])
    raise argparse.ArgumentTypeError(f"point {text!r} must be X,Y or X,Y,LABEL with LABEL 1 (foreground) or 0")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} must be a number from 0 to 1")
    return value


def _box(text: str) -> tuple[float, float, float, float]:
    values = _coordinates(text.split(","))
    if values is None or len(values) != 4:
        raise argparse.ArgumentTypeError(f"box {text!r} must be X1,Y1,X2,Y2")
    return values


def add_parser(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="segment an image (everything, or what points, boxes and texts select)",
        description=(
            "Segment every object in IMAGE with FastSAM; with prompts, keep what they select. "
            "Prompts of different kinds are combined by union."
        ),
    )
    p.add_argument("image", help="image file")
    p.add_argument(
        "--point",
        type=_point,
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="point prompt in pixels; LABEL 1 foreground (default) or 0 background; repeatable",
    )
    p.add_argument(
        "--box", type=_box, action="append", default=[], metavar="X1,Y1,X2,Y2", help="box prompt in pixels; repeatable"
    )
    p.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="TEXT",
        help='text prompt, e.g. "scratch": every segment CLIP finds closer to it than to the negatives; repeatable',
    )
    p.add_argument(
        "--negative",
        action="append",
        default=[],
        metavar="TEXT",
        help='what texts are weighed against (default: "a normal surface", "the background"); repeatable',
    )
    p.add_argument("--text-threshold", type=_fraction, default=0.5, help="probability a text needs (default: 0.5)")
    p.add_argument("--clip-model", default="ViT-B-32", help="open_clip model name or config file (default: ViT-B-32)")
    p.add_argument(
        "--clip-weights",
        default=None,
        help="CLIP checkpoint path, file in the model folder, or pretrained tag (default: laion2b_s34b_b79k)",
    )
    p.add_argument("--mode", choices=POINT_MODES, default="merge", help="point semantics (default: merge)")
    p.add_argument("--weights", default=None, help="FastSAM weights: path or file name (default: embedded model)")
    p.add_argument(
        "--download", action="store_true", help="download FastSAM-s.pt / FastSAM-x.pt and CLIP weights if not on disk"
    )
    p.add_argument("--imgsz", type=input_size, default=640, help="network input size (default: 640)")
    p.add_argument("--conf", type=_fraction, default=0.25, help="minimum confidence (default: 0.25)")
    p.add_argument("--iou", type=_fraction, default=0.7, help="NMS IoU threshold (default: 0.7)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--out", help="write the selected region as a 0/255 PNG mask")
    p.add_argument("--overlay", help="write the image with the selection (or every segment) drawn on it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def _text_classifier(args: argparse.Namespace):
    from inspector.engine.clip import DEFAULT_NEGATIVES, SegmentClassifier, clip_encoder, resolve_clip

    weights = resolve_clip(args.clip_model, args.clip_weights, allow_download=args.download)
    return SegmentClassifier(
        clip_encoder(weights, device=args.device),
        classes=args.text,
        negatives=args.negative or DEFAULT_NEGATIVES,
        threshold=args.text_threshold,
    )


def run(args: argparse.Namespace) -> int:
    from inspector.engine.segmenter import FastSAMSegmenter  # torch loads only for this command

    image = read_image(args.image)
    classifier = _text_classifier(args) if args.text else None  # before the model: fail fast without CLIP
    segmenter = FastSAMSegmenter(
        args.weights, device=args.device, imgsz=args.imgsz, conf=args.conf, iou=args.iou, allow_download=args.download
    )
    segmentation = segmenter.segment(image)

    points = np.array([p[:2] for p in args.point]) if args.point else None
    labels = np.array([p[2] for p in args.point]) if args.point else None
    boxes = np.array(args.box) if args.box else None
    prompted = points is not None or boxes is not None or bool(args.text)
    try:
        texts = select_text(segmentation, image, classifier) if classifier is not None else ()
        selection = (
            select_segments(segmentation, points=points, labels=labels, boxes=boxes, mode=args.mode, also=texts)
            if prompted
            else None
        )
    except ValueError as exc:
        raise InspectorError(f"{args.image}: {exc}") from None
    chosen = selection.indices if selection is not None else np.arange(len(segmentation))

    h, w = image.shape[:2]
    region = segmentation.full_region(selection) if selection is not None else None
    if args.out:
        if region is None:  # no prompt: the mask of everything
            region = np.zeros((h, w), bool)
            for i in chosen:
                region |= segmentation.full_mask(int(i))
        write_image(args.out, region.astype(np.uint8) * 255)
    if args.overlay:
        layers = [region] if region is not None else [segmentation.full_mask(int(i)) for i in chosen]
        picture = draw_regions(image, layers)
        write_image(args.overlay, draw_prompts(picture, points=points, labels=labels, boxes=boxes))

    report = {
        "image": args.image,
        "size": [w, h],
        "model": segmenter.identity.to_dict(),
        "instances": len(segmentation),
        "selected": [
            {
                "index": int(i),
                "score": round(float(segmentation.scores[i]), 4),
                "box": [round(float(v), 1) for v in segmentation.boxes[i]],
            }
            for i in chosen
        ],
        "selected_area_px": int(region.sum()) if region is not None else None,
        "timings_ms": {k: round(v, 2) for k, v in segmentation.timings.items()},
    }
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(
            f"{args.image}: {len(segmentation)} segments, {len(chosen)} selected"
            + (f", region {report['selected_area_px']} px" if region is not None else "")
        )
        for item in report["selected"]:
            print(f"  #{item['index']:<3} score {item['score']:.2f}  box {item['box']}")
        print("  " + ", ".join(f"{k} {v:.1f} ms" for k, v in report["timings_ms"].items()))
    return 0
