"""Train Inspector's embedded class-agnostic segmenter on synthetic product images.

Fixed seeds, CPU only; ``packaging/train_embedded_model.sh`` runs both stages and the
evaluation in one command.

Stage 1 generates training crops (seed 0) and trains a YOLOv8n-seg network from scratch
with ultralytics for a fixed wall-clock budget. Stage 2 (``--init`` the stage-1 weights,
another seed) continues on crops where every part is defective, without mosaic, so the
small instances that learn last get the time they need. Each stage copies the weights
into ``inspector/engine/models/`` and records itself in ``training.json`` there (data,
epochs, how long it ran). ``packaging/evaluate_embedded_model.py`` then measures the
model on held-out scenes and writes the model card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspector.synthetic.defects import VISIBLE_DEFECT_KINDS  # noqa: E402
from inspector.synthetic.scene import generate_scene  # noqa: E402
from inspector.synthetic.yolo_export import write_crops  # noqa: E402

MODEL_DIR = ROOT / "inspector" / "engine" / "models"
MODEL_NAME = "inspector-seg-n.pt"


def build_dataset(
    out: Path, *, scenes: int, seed: int, split: str, defect_probability: float = 0.85, kinds=VISIBLE_DEFECT_KINDS
) -> int:
    rng = np.random.default_rng(seed)
    count = 0
    for k in range(scenes):
        scene = generate_scene(rng, defect_probability=defect_probability, defect_kinds=kinds)
        count += write_crops(scene, out / split, f"{split}_{k:05d}", rng)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "packaging" / "training-run")
    parser.add_argument("--scenes", type=int, default=400, help="training scenes (about 2.8 crops each)")
    parser.add_argument("--hours", type=float, default=0.85, help="wall-clock training budget")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="continue from these weights (a second, defect-rich stage) instead of from scratch",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the training scenes")
    parser.add_argument(
        "--kinds",
        default=",".join(VISIBLE_DEFECT_KINDS),
        help="defect kinds drawn uniformly from this list; repeat a kind to weight it (e.g. hole,hole,stain)",
    )
    parser.add_argument("--out", type=Path, default=MODEL_DIR / MODEL_NAME, help="where the weights go")
    args = parser.parse_args()

    # Never reach for the network: no hub downloads, no package installs, no font fetches.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    from ultralytics import YOLO

    started = time.time()
    # Absolute: ultralytics puts a relative project folder under its own runs/ directory.
    args.work = args.work.resolve()
    if args.work.exists():
        shutil.rmtree(args.work)
    data = args.work / "data"
    stage2 = args.init is not None
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(VISIBLE_DEFECT_KINDS))
    if unknown:
        parser.error(f"--kinds: unknown defect kind(s) {', '.join(unknown)}")
    n_train = build_dataset(
        data,
        scenes=args.scenes,
        seed=args.seed,
        split="train",
        defect_probability=1.0 if stage2 else 0.85,
        kinds=kinds,
    )
    n_val = build_dataset(data, scenes=40, seed=1, split="val")
    (data / "data.yaml").write_text(f"path: {data}\ntrain: train/images\nval: val/images\nnames:\n  0: object\n")
    generated = time.time()
    print(f"generated {n_train} training and {n_val} validation crops in {generated - started:.0f} s", flush=True)

    model = YOLO(str(args.init) if stage2 else "yolov8n-seg.yaml")
    # A second stage fine-tunes: smaller steps, no warm-up, no mosaic (whole parts, native scale).
    schedule = (
        dict(lr0=0.002, warmup_epochs=0, mosaic=0.0, close_mosaic=0)
        if stage2
        else dict(warmup_epochs=1, close_mosaic=3)
    )
    model.train(
        data=str(data / "data.yaml"),
        imgsz=args.imgsz,
        time=args.hours,  # ultralytics fits the schedule (and epochs) to this budget
        epochs=100,
        batch=16,
        workers=2,
        device="cpu",
        seed=0,
        deterministic=True,
        project=str(args.work),
        name="train",
        exist_ok=True,
        cache="ram",
        plots=False,
        val=False,
        amp=False,
        overlap_mask=False,  # a defect's mask overlaps its part's; keep both whole
        **schedule,
        scale=0.2,  # stay near native scale: defects must keep their size
        degrees=10.0,
        flipud=0.5,
        patience=1000,
    )
    finished = time.time()

    weights = args.work / "train" / "weights" / "last.pt"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights, args.out)
    results_csv = args.work / "train" / "results.csv"
    epochs_run = max(0, len(results_csv.read_text().splitlines()) - 1) if results_csv.exists() else None
    record = {
        "model": MODEL_NAME,
        "architecture": "yolov8n-seg (ultralytics), 1 class, trained from scratch",
        "train_scenes": args.scenes,
        "train_crops": n_train,
        "val_crops": n_val,
        "crop_px": 320,
        "imgsz": args.imgsz,
        "epochs": epochs_run,
        "budget_hours": args.hours,
        "data_generation_s": round(generated - started, 1),
        "training_s": round(finished - generated, 1),
        "total_s": round(time.time() - started, 1),
        "seeds": {"train": args.seed, "val": 1},
        "defect_kinds": list(kinds),
        "init": str(args.init) if stage2 else None,
        "command": "python " + " ".join(sys.argv),
    }
    # training.json beside the weights lists every stage that made them.
    history = args.out.parent / "training.json"
    stages = json.loads(history.read_text()).get("stages", []) if stage2 and history.exists() else []
    history.write_text(json.dumps({"stages": [*stages, record]}, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"total {record['total_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
