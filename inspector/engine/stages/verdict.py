"""Verdict: FAIL when the image has more defects than the recipe allows, else PASS.

A recipe that registers images and holds their segments against the reference's cannot
check a part that would not register (``register`` inspected it by relative position):
such a part FAILs with a "not registered" finding over the whole image rather than
passing unchecked.
"""

from __future__ import annotations

import numpy as np

from inspector.engine.rules import NOT_REGISTERED_LABEL
from inspector.engine.stages import ImageWork, Stage, StageContext
from inspector.engine.types import FAIL, PASS, Finding


def _not_registered(work: ImageWork) -> Finding:
    w, h = work.picture.full_size
    outline = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    return Finding(NOT_REGISTERED_LABEL, 1.0, float(w * h), (0.0, 0.0, float(w - 1), float(h - 1)), outline)


def run(work: ImageWork, context: StageContext) -> None:
    recipe = context.recipe
    unchecked = (
        recipe.alignment.method != "none" and recipe.uses_segments and work.registration.method == "relative position"
    )
    if unchecked:
        work.unsegmented.append(_not_registered(work))
    found = len(work.defects) + len(work.unsegmented)
    work.verdict = FAIL if found > recipe.defects.allowed or unchecked else PASS


STAGE = Stage("verdict", run)
