"""Images of another size than the reference's: prompts map by relative position."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.engine.pipeline import InspectionPipeline
from tests.helpers import fixtured, fixtured_recipe


def test_a_part_photographed_larger_without_alignment_is_inspected_by_relative_position(tmp_path, embedded_segmenter):
    recipe, _ = fixtured_recipe(tmp_path)
    pipeline = InspectionPipeline(recipe, segmenter=embedded_segmenter)
    good = cv2.resize(fixtured(41, defective=False).image, (960, 720), interpolation=cv2.INTER_LINEAR)
    result = pipeline.inspect(good)
    assert (result.verdict, result.registration, result.image_size) == ("PASS", "relative position", (960, 720))
    scene = fixtured(42, kinds=("stain",))
    result = pipeline.inspect(cv2.resize(scene.image, (960, 720), interpolation=cv2.INTER_LINEAR))
    assert result.verdict == "FAIL"
    truth = cv2.resize(scene.defects[0].mask.astype(np.uint8), (960, 720), interpolation=cv2.INTER_NEAREST) > 0
    ys, xs = np.nonzero(truth)
    hit = [f for f in result.findings if f.box[0] <= xs.mean() <= f.box[2] and f.box[1] <= ys.mean() <= f.box[3]]
    assert hit  # outlined where the stain is, in the larger image's pixels
