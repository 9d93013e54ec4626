"""Verdict: FAIL when the image has more defects than the recipe allows, else PASS."""

from __future__ import annotations

from inspector.engine.stages import ImageWork, Stage, StageContext
from inspector.engine.types import FAIL, PASS


def run(work: ImageWork, context: StageContext) -> None:
    found = len(work.defects) + len(work.unsegmented)
    work.verdict = FAIL if found > context.recipe.defects.allowed else PASS


STAGE = Stage("verdict", run)
