"""Fixed benchmark image sets: the demo product at 0.3, 2 and 12 megapixels.

The demo scenes (640x480, half of them defective) are scaled up to each size, as a
higher-resolution camera would see the same part, and written as JPEG (quality 95), the
format such cameras save. The demo recipe is scaled with them: boxes by the linear
factor, area limits by its square.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from inspector.engine.image import write_image
from inspector.recipe.io import load_recipe, save_recipe
from inspector.synthetic.demo_product import demo_background, demo_reference, demo_scene, write_demo_recipe

SIZES: dict[str, tuple[int, int]] = {"0.3MP": (640, 480), "2MP": (1632, 1224), "12MP": (4000, 3000)}
SEED = 2026


def _scaled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(encoded.tobytes())


def bench_set(
    folder: Path, size_name: str, count: int, *, weights: str | None = None, conf: float | None = None
) -> tuple[Path, list[Path]]:
    """The recipe and images of one size, written once into ``folder`` and then reused.

    Returns:
        (recipe path, image paths).
    """
    size = SIZES[size_name]
    folder = Path(folder) / f"{size_name}-{count}-{Path(weights or 'embedded').stem}"
    images = folder / "images"
    stamp = folder / "set.json"
    key = {"size": size, "count": count, "seed": SEED, "weights": weights, "conf": conf}
    if not (stamp.exists() and json.loads(stamp.read_text()) == key):
        images.mkdir(parents=True, exist_ok=True)
        factor = size[0] / 640
        demo = load_recipe(write_demo_recipe(folder))
        write_image(folder / demo.reference_image, _scaled(demo_reference().image, size))
        rules = demo.defects
        # The whole image at 640 px, as ultralytics' baseline sees it: the comparison is
        # about the code around the same forward pass, not about showing it fewer pixels.
        recipe = replace(
            demo,
            model=replace(
                demo.model,
                weights=weights or demo.model.weights,
                conf=demo.model.conf if conf is None else conf,
                imgsz=640,
                window="image",
            ),
            part=replace(demo.part, boxes=tuple(tuple(v * factor for v in b) for b in demo.part.boxes)),
            defects=replace(rules, min_area=rules.min_area * factor**2, max_area=rules.max_area * factor**2),
        )
        save_recipe(recipe, folder / "bench.yaml")
        rng = np.random.default_rng(SEED)
        background = demo_background()
        for k in range(count):
            scene = demo_scene(rng, defective=k % 2 == 0, background=background)
            _write_jpeg(images / f"part_{k:05d}.jpg", _scaled(scene.image, size))
        stamp.write_text(json.dumps(key))
    return folder / "bench.yaml", sorted(images.glob("*.jpg"))
