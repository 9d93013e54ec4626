"""Whole synthetic camera images: background, parts, defects, lighting, blur and noise.

The generator is deterministic for a given ``numpy.random.Generator`` state, so a seed
names a data set. Every visible structure comes with a pixel-exact instance mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from inspector.synthetic.defects import VISIBLE_DEFECT_KINDS, DefectKind, paint_defect
from inspector.synthetic.products import ProductDesign, random_design, render_part
from inspector.synthetic.shapes import smooth_field

InstanceRole = Literal["part", "feature", "defect"]


@dataclass(frozen=True)
class Instance:
    """One ground-truth segment: a part, a printed feature of a part, or a defect."""

    role: InstanceRole
    label: str  # product kind, "print", or defect kind
    mask: np.ndarray  # (H, W) bool
    part_index: int  # which part of the scene it belongs to
    visible: bool = True  # False for defects that leave no segment (missing print)


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    instances: tuple[Instance, ...]

    @property
    def defects(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.role == "defect")

    @property
    def parts(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.role == "part")


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = rng.uniform(20, 200, size=3)
    if rng.random() < 0.5:  # mostly gray conveyors, sometimes coloured trays
        base[:] = base.mean()
    field = smooth_field(rng, (height, width), cells=int(rng.integers(3, 9)))
    image = base[None, None, :] * (1 + 0.25 * field[..., None])
    if rng.random() < 0.4:  # belt texture: fine stripes
        period = rng.uniform(6, 30)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        image *= (1 + rng.uniform(0.03, 0.12) * stripes)[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def _finish(rng: np.random.Generator, image: np.ndarray, *, noise: float, blur: float) -> np.ndarray:
    """Camera effects: uneven lighting, defocus and sensor noise."""
    h, w = image.shape[:2]
    light = 1 + rng.uniform(0.05, 0.3) * smooth_field(rng, (h, w), cells=3)
    out = image.astype(np.float32) * light[..., None] * rng.uniform(0.8, 1.15)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    out += rng.normal(0, noise, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _free_spot(
    rng: np.random.Generator, taken: np.ndarray, design: ProductDesign, *, center_jitter: float | None
) -> tuple[float, float] | None:
    h, w = taken.shape
    r = design.radius
    for _ in range(30):
        if center_jitter is not None:
            c = (w / 2 + rng.uniform(-1, 1) * center_jitter, h / 2 + rng.uniform(-1, 1) * center_jitter)
        else:
            c = (rng.uniform(r, max(r + 1, w - r)), rng.uniform(r, max(r + 1, h - r)))
        x0, x1 = int(max(0, c[0] - r - 8)), int(min(w, c[0] + r + 8))
        y0, y1 = int(max(0, c[1] - r - 8)), int(min(h, c[1] + r + 8))
        if not taken[y0:y1, x0:x1].any():
            taken[y0:y1, x0:x1] = True
            return c
    return None


def generate_scene(
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (640, 640),
    designs: Sequence[ProductDesign] | None = None,
    n_parts: int | None = None,
    defect_probability: float = 0.6,
    defect_kinds: Sequence[DefectKind] = VISIBLE_DEFECT_KINDS,
    max_defects: int = 3,
    center_jitter: float | None = None,
    max_angle: float = 180.0,
    background: np.ndarray | None = None,
) -> Scene:
    """Render one image with its instance masks.

    Args:
        rng: source of all randomness; the same state gives the same scene.
        size: (width, height) of the image.
        designs: the product designs to place (one part each); random designs when None.
        n_parts: number of random parts when ``designs`` is None (1 to 3 by default).
        defect_probability: chance that a part carries at least one defect.
        defect_kinds: kinds to draw defects from.
        max_defects: most defects on one part.
        center_jitter: place parts within this many pixels of the image centre (a
            fixtured line) instead of anywhere.
        max_angle: parts are rotated by up to this many degrees either way.
        background: a fixed (H, W, 3) background (a line's conveyor); random when None.
    """
    width, height = size
    image = background.copy() if background is not None else random_background(rng, height, width)
    if designs is None:
        designs = [random_design(rng) for _ in range(n_parts or int(rng.integers(1, 4)))]
    taken = np.zeros((height, width), bool)
    instances: list[Instance] = []
    for index, design in enumerate(designs):
        center = _free_spot(rng, taken, design, center_jitter=center_jitter)
        if center is None:
            continue
        part = render_part(image, design, center=center, angle=rng.uniform(-max_angle, max_angle), rng=rng)
        instances.append(Instance("part", design.kind, part.body, index))
        instances.extend(Instance("feature", "print", m, index) for m in part.prints if m.any())
        if rng.random() < defect_probability:
            for _ in range(int(rng.integers(1, max_defects + 1))):
                kind = defect_kinds[int(rng.integers(len(defect_kinds)))]
                defect = paint_defect(image, part, kind, rng=rng)
                if defect is not None:
                    instances.append(Instance("defect", kind, defect.mask, index, visible=kind != "missing_print"))
    image = _finish(rng, image, noise=rng.uniform(1, 6), blur=rng.choice([0, 0, 0.6, 1.0]))
    return Scene(image=image, instances=tuple(_drop_hidden_prints(instances)))


def _drop_hidden_prints(instances: list[Instance]) -> list[Instance]:
    """A print erased by a missing-print defect is no longer a visible feature."""
    erased = [i.mask for i in instances if i.label == "missing_print"]
    return [i for i in instances if not (i.role == "feature" and any((i.mask & e).any() for e in erased))]
