"""Select: what the recipe's prompts pick in the image's segments: the part, normal
surfaces, ignored areas (``engine/regions.py``)."""

from __future__ import annotations

from inspector.engine.reference import confident
from inspector.engine.regions import PartNotFound, select_regions
from inspector.engine.stages import ImageError, ImageWork, Stage, StageContext


def run(work: ImageWork, context: StageContext) -> None:
    try:
        work.regions = select_regions(confident(work.segmentation, context.recipe), context.recipe)
    except PartNotFound as exc:
        raise ImageError(str(exc)) from None


STAGE = Stage("select", run, timing="select")
