"""Test doubles and data makers shared by several test modules."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from inspector.engine.image import write_image
from inspector.engine.segmenter import SegmenterRuntime
from inspector.engine.types import ModelIdentity, Segmentation
from inspector.errors import EngineError
from inspector.recipe.io import save_recipe
from inspector.recipe.model import DefectRules, PartPrompts, Recipe
from inspector.synthetic.demo_product import demo_background, demo_design
from inspector.synthetic.scene import Scene, generate_scene

SCALE = 0.25


def segmentation_of(masks: list[np.ndarray], image_size: tuple[int, int]) -> Segmentation:
    """A Segmentation whose segments are exactly the given full-resolution masks."""
    w, h = image_size
    lw, lh = int(np.ceil(w * SCALE)), int(np.ceil(h * SCALE))
    low, boxes = [], []
    for m in masks:
        small = cv2.resize(m.astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA)
        low.append(small)
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    probs = np.array(low, np.float32).reshape(-1, lh, lw)
    return Segmentation(
        image_size=(w, h),
        scale=SCALE,
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.full(len(masks), 0.9, np.float32),
        masks=probs > 0.5,
        probabilities=probs.astype(np.float16),
    )


class TruthSegmenter:
    """Segments an image by looking up the scene it was rendered from: a perfect model.

    Lets pipeline tests check the rules around the model without depending on how well
    the model segments.
    """

    identity = ModelIdentity(name="truth", path="<test>", sha256="0" * 64)

    def __init__(self, scenes: list[Scene]) -> None:
        self._scenes = {hashlib.sha256(s.image.tobytes()).hexdigest(): s for s in scenes}
        self.calls = 0

    def runtime(self) -> SegmenterRuntime:
        return SegmenterRuntime(backend="truth", device_type="stand-in")

    def replica(self, *, threads=None):
        raise EngineError("the stand-in segmenter runs one image at a time")

    def free_device_memory(self):
        return None

    def scene_of(self, image) -> Scene:
        return self._scenes[hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()]

    def segment(self, image, *, imgsz=None, conf=None, iou=None, original_size=None) -> Segmentation:
        self.calls += 1
        scene = self.scene_of(image)
        masks = [i.mask for i in scene.instances if i.visible]
        return segmentation_of(masks, (image.shape[1], image.shape[0]))


SIZE = (640, 480)


def fixtured(seed: int, *, kinds=("stain",), defective=True):
    """A demo part exactly in the fixture: same pose as the reference."""
    return generate_scene(
        np.random.default_rng(seed),
        size=SIZE,
        designs=[demo_design()],
        background=demo_background(),
        defect_probability=1.0 if defective else 0.0,
        defect_kinds=kinds,
        max_defects=1,
        center_jitter=0.0,
        max_angle=0.0,
    )


def fixtured_recipe(folder):
    """A reference image of a fixtured demo part and a recipe with a part box around it."""
    reference = fixtured(0, defective=False)
    write_image(folder / "ref.png", reference.image)
    ys, xs = np.nonzero(reference.parts[0].mask)
    box = (float(xs.min() - 4), float(ys.min() - 4), float(xs.max() + 5), float(ys.max() + 5))
    recipe = Recipe(
        name="Label", reference_image="ref.png", part=PartPrompts(boxes=(box,)), defects=DefectRules(min_area=40)
    )
    return save_recipe(recipe, folder / "label.yaml"), reference


class FramesFrom:
    """A source made of any iterable of frames: finite (read ahead, as files are) or
    live (one at a time, as a camera's)."""

    def __init__(self, frames, *, finite: bool = True, name: str = "test frames") -> None:
        self._frames, self.finite, self._name = frames, finite, name

    def frames(self):
        return iter(self._frames)

    def describe(self) -> str:
        return self._name

    def destination(self, frame, verdict):
        return None

    def relocate(self, frame, destination):
        pass

    def stop(self) -> None:
        pass


def shared_data(*parts: str):
    """A folder of ``../shared/data`` (the real photographs beside the repository), found
    from any checkout depth; None where the photographs are not there."""
    from pathlib import Path

    for folder in Path(__file__).resolve().parents:
        candidate = folder.joinpath("shared", "data", *parts)
        if candidate.is_dir():
            return candidate
    return None


def rows(where, sql: str) -> list[tuple]:
    """The rows a query returns from a results database: a SQLAlchemy URL (SQLite or
    PostgreSQL) or a SQLite file's path."""
    from sqlalchemy import create_engine, text

    url = where if isinstance(where, str) and "://" in where else f"sqlite:///{where}"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()
