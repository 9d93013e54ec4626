"""Segment: every segment the network finds in what it sees of the image, in reference
pixels. Timed by the segmenter itself (preprocess, inference, postprocess)."""

from __future__ import annotations

from inspector.engine.reference import placed
from inspector.engine.stages import ImageWork, Stage, StageContext


def run(work: ImageWork, context: StageContext) -> None:
    registration, reference = work.registration, context.reference
    segmentation = context.segment(registration.network_input, registration.original_size)
    work.segmentation = placed(segmentation, reference.window, reference.size)
    work.timings.update(segmentation.timings)


STAGE = Stage("segment", run)
