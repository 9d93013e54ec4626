"""Learning normal appearance: what the anomaly stage, teaching and the bank cost.

    .venv/bin/python benchmarks/bench_anomaly.py [--images 20] [--teach 50] [--large 500] [--json out.json]

Measured, each side by side in one process on the same images:

- the anomaly stage against the embedded segmenter's forward pass ("inference"), per
  image, on demo parts at 0.3 and 2 megapixels (a recipe taught from good demo parts)
  and on the cookie photographs (0.44 MP, 4 taught), as the pipeline times its stages;
- teaching ``--teach`` good demo parts (wall time, the whole of ``teach_recipe``);
- teaching ``--large`` good demo parts: the bank's size, its file, and the process's peak
  RSS against before teaching (the bound is MAX_CANDIDATES patches, not the image count).

Targets: the stage no more than the forward
pass at 0.3-2 MP; 50 images taught in under 60 s; a bank of 500 images at most 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

from inspector.bench.dataset import SIZES, bench_set
from inspector.engine.image import write_image
from inspector.engine.pipeline import open_pipeline
from inspector.recipe.io import load_recipe
from inspector.services.teaching import teach_recipe
from inspector.synthetic.demo_product import demo_background, demo_scene

COOKIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "lookout_cookies" / "cookie"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def good_parts(folder: Path, count: int, size: tuple[int, int], seed: int) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    background = demo_background()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        image = demo_scene(rng, defective=False, background=background).image
        if size != (image.shape[1], image.shape[0]):
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        write_image(folder / f"good_{k:04d}.png", image)


def stage_costs(recipe_file: Path, images: list[Path]) -> dict:
    pipeline = open_pipeline(load_recipe(recipe_file))
    stages: dict[str, list[float]] = {"anomaly": [], "inference": []}
    pipeline.inspect_file(images[0])  # the first image also loads the feature network
    for path in images[1:]:
        result = pipeline.inspect_file(path)
        for name in stages:
            stages[name].append(result.timings.get(name, float("nan")))
    medians = {name: float(np.median(values)) for name, values in stages.items()}
    return {
        **{f"{k}_ms": round(v, 1) for k, v in medians.items()},
        "ratio": round(medians["anomaly"] / medians["inference"], 2),
    }


def large_child(recipe_file: str, folder: str) -> int:
    """Peak RSS of a process that teaches one image (every network loaded), then all."""
    first = Path(folder).parent / "first"
    first.mkdir(exist_ok=True)
    shutil.copy(sorted(Path(folder).glob("*.png"))[0], first)
    teach_recipe(recipe_file, [first])
    loaded = peak_rss_mb()
    started = time.perf_counter()
    taught = teach_recipe(recipe_file, [folder])
    model = taught.outcome.model
    figures = {
        "images": len(taught.outcome.taught),
        "seconds": round(time.perf_counter() - started, 1),
        "patches": len(model.bank),
        "bank_mb": round(model.bank.nbytes / 2**20, 1),
        "file_mb": round(taught.model_file.stat().st_size / 2**20, 1),
        "peak_rss_mb_networks_loaded": round(loaded),
        "peak_rss_mb_taught": round(peak_rss_mb()),
        "teaching_mb": round(peak_rss_mb() - loaded),
    }
    print(json.dumps(figures))
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--large-child":
        return large_child(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20, help="inspected images per size")
    parser.add_argument("--teach", type=int, default=50, help="good images taught for the teaching time")
    parser.add_argument("--large", type=int, default=500, help="good images taught for the bank's memory")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures: dict = {"machine": f"{os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory(prefix="inspector-bench-anomaly-") as work:
        work = Path(work)
        for label in ("0.3MP", "2MP"):
            recipe_file, images = bench_set(work / label, label, args.images)
            good_parts(work / label / "good", 20, SIZES[label], seed=7)
            teach_recipe(recipe_file, [work / label / "good"])
            figures[f"stage {label}"] = stage_costs(recipe_file, images)
            print(f"anomaly stage at {label}: {figures[f'stage {label}']}", flush=True)
        if COOKIES.is_dir():
            folder = work / "cookies"
            (folder / "good").mkdir(parents=True)
            for name in ("normal-1", "normal-10", "normal-11", "normal-12"):
                shutil.copy(COOKIES / "train" / "good" / f"{name}.jpg", folder / "good")
            from inspector.recipe.io import save_recipe
            from inspector.recipe.model import Recipe

            recipe = save_recipe(Recipe("Cookie", str(folder / "good" / "normal-1.jpg")), folder / "cookie.yaml")
            teach_recipe(recipe.source, [folder / "good"])
            tests = sorted((COOKIES / "test").glob("*/*.jpg"))[: args.images + 1]
            figures["stage cookies"] = stage_costs(recipe.source, tests)
            print(f"anomaly stage on the cookies: {figures['stage cookies']}", flush=True)

        teach_folder = work / "teach"
        good_parts(teach_folder / "good", args.teach, SIZES["0.3MP"], seed=11)
        recipe_file, _ = bench_set(teach_folder, "0.3MP", 1)
        started = time.perf_counter()
        teach_recipe(recipe_file, [teach_folder / "good"])
        figures["teach"] = {"images": args.teach, "seconds": round(time.perf_counter() - started, 1)}
        print(f"teaching {args.teach} images: {figures['teach']['seconds']} s", flush=True)

        large = work / "large"
        good_parts(large / "good", args.large, SIZES["0.3MP"], seed=13)
        recipe_file, _ = bench_set(large, "0.3MP", 1)
        # In a process of its own: its peak RSS with the networks loaded (one image taught
        # first), then after teaching all of them.
        child = subprocess.run(
            [sys.executable, __file__, "--large-child", str(recipe_file), str(large / "good")],
            capture_output=True,
            text=True,
            check=True,
        )
        figures["bank"] = json.loads(child.stdout.splitlines()[-1])
        print(f"teaching {args.large} images: {figures['bank']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
