"""Defect rules on low-resolution masks, without a model."""

from __future__ import annotations

import numpy as np

from inspector.engine.rules import find_defects
from inspector.recipe.model import DefectRules


def test_a_plain_part_whose_reference_shows_no_features_is_inspected():
    # A part without prints: nothing can be missing, and a stain on it is still a defect.
    part = np.zeros((60, 80), bool)
    part[10:50, 10:70] = True
    stain = np.zeros_like(part)
    stain[20:26, 30:36] = True
    found = find_defects(
        np.stack([part, stain]),
        np.array([0.9, 0.8]),
        pixel_area=16.0,
        part_region=part,
        excluded={0},
        ignore_region=np.zeros_like(part),
        rules=DefectRules(min_area=100),
        reference_masks=part[None],
        reference_features=np.zeros(0, np.int64),
    )
    assert [(c.index, c.label, c.missing) for c in found] == [(1, "defect", False)]
