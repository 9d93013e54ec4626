"""Classify: text classes and exemplars (CLIP) name the defects, or drop those that look
like a normal surface (``engine/defect_classes.py``). Only for recipes that have them."""

from __future__ import annotations

from inspector.engine.defect_classes import label_candidates
from inspector.engine.stages import ImageWork, Stage, StageContext


def run(work: ImageWork, context: StageContext) -> None:
    if context.classifier is None or not work.defects:
        return
    # CLIP looks at the full-resolution pixels, in the reference frame.
    warp = work.registration.warp
    picture = work.picture
    frame = picture.pixels if warp is None else context.reference.aligner.warp(picture.pixels, warp)
    candidates, patches = zip(*work.defects, strict=True)
    work.defects = label_candidates(context.classifier, frame, list(candidates), list(patches))


STAGE = Stage("classify", run, timing="classify", wanted=lambda recipe: recipe.defects.uses_clip)
