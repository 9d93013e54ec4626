"""The demo product: one printed label, fixtured on a line, photographed part by part."""

from __future__ import annotations

import numpy as np

from inspector.synthetic.defects import DEFECT_KINDS
from inspector.synthetic.products import ProductDesign, random_design
from inspector.synthetic.scene import Scene, generate_scene

DEMO_IMAGE_SIZE = (640, 480)
_DESIGN_SEED = 2024


def demo_design() -> ProductDesign:
    """The same label design in every demo image (a product, not a random part)."""
    return random_design(np.random.default_rng(_DESIGN_SEED), "label", scale=1.25)


def demo_scene(rng: np.random.Generator, *, defective: bool) -> Scene:
    """One photograph of the demo product: a good part, or one with 1-2 defects."""
    return generate_scene(
        rng,
        size=DEMO_IMAGE_SIZE,
        designs=[demo_design()],
        defect_probability=1.0 if defective else 0.0,
        defect_kinds=DEFECT_KINDS,
        max_defects=2,
        center_jitter=25.0,
        max_angle=6.0,
    )
