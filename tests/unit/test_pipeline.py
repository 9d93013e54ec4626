"""The inspection rules around the model, with a perfect stand-in segmenter."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inspector.engine.pipeline import InspectionPipeline
from inspector.recipe.io import recipe_hash
from tests.helpers import TruthSegmenter, fixtured, fixtured_recipe, segmentation_of

SIZE = (640, 480)


@pytest.fixture
def setup(tmp_path):
    return fixtured_recipe(tmp_path)


def pipeline_for(recipe, reference, *scenes):
    return InspectionPipeline(recipe, segmenter=TruthSegmenter([reference, *scenes]))


def test_good_part_passes_and_defective_part_fails_with_its_outline(setup):
    recipe, reference = setup
    good, bad = fixtured(1, defective=False), fixtured(2)
    pipeline = pipeline_for(recipe, reference, good, bad)
    assert pipeline.inspect(good.image).verdict == "PASS"
    result = pipeline.inspect(bad.image)
    assert result.verdict == "FAIL"
    (finding,) = result.findings
    truth = bad.defects[0].mask
    ys, xs = np.nonzero(truth)
    x1, _, _, y2 = finding.box
    assert abs(x1 - xs.min()) < 6 and abs(y2 - ys.max()) < 6
    assert 0.6 < finding.area / truth.sum() < 1.6
    assert finding.label == "defect" and len(finding.outline) >= 3
    assert set(result.timings) >= {"align", "select", "rules", "outline"}


def test_missing_print_is_found_by_comparison_with_the_reference(setup):
    recipe, reference = setup
    bad = fixtured(3, kinds=("missing_print",))
    result = pipeline_for(recipe, reference, bad).inspect(bad.image)
    assert result.verdict == "FAIL"
    assert [f.label for f in result.findings] == ["missing feature"]


def test_ignore_boxes_allowed_count_and_normal_points(setup):
    recipe, reference = setup
    bad = fixtured(2)
    ys, xs = np.nonzero(bad.defects[0].mask)
    around = (float(xs.min() - 3), float(ys.min() - 3), float(xs.max() + 4), float(ys.max() + 4))
    ignored = replace(recipe, ignore_boxes=(around,))
    assert pipeline_for(ignored, reference, bad).inspect(bad.image).verdict == "PASS"
    tolerant = replace(recipe, defects=replace(recipe.defects, allowed=1))
    result = pipeline_for(tolerant, reference, bad).inspect(bad.image)
    assert result.verdict == "PASS" and len(result.findings) == 1
    normal = replace(recipe, normal_points=((float(xs[len(xs) // 2]), float(ys[len(ys) // 2])),))
    assert pipeline_for(normal, reference, bad).inspect(bad.image).verdict == "PASS"


def test_area_limits_drop_small_candidates(setup):
    recipe, reference = setup
    bad = fixtured(2)
    area = bad.defects[0].mask.sum()
    strict = replace(recipe, defects=replace(recipe.defects, min_area=float(area) * 2))
    assert pipeline_for(strict, reference, bad).inspect(bad.image).verdict == "PASS"


def test_reference_is_segmented_once(setup):
    recipe, reference = setup
    scenes = [fixtured(s, defective=False) for s in (4, 5, 6)]
    segmenter = TruthSegmenter([reference, *scenes])
    pipeline = InspectionPipeline(recipe, segmenter=segmenter)
    for scene in scenes:
        pipeline.inspect(scene.image)
    assert segmenter.calls == 1 + len(scenes)


def test_unreadable_file_is_an_error_result_not_an_exception(setup, tmp_path):
    recipe, reference = setup
    (tmp_path / "bad.png").write_text("no pixels here")
    result = pipeline_for(recipe, reference).inspect_file(tmp_path / "bad.png")
    assert result.verdict == "ERROR" and "bad.png" in result.error
    assert result.recipe_hash == recipe_hash(recipe)


class FragmentingSegmenter(TruthSegmenter):
    """A perfect segmenter that also cuts a piece out of the bare label of every image but
    the reference: a segment no reference segment matches, over unchanged surface."""

    def __init__(self, scenes, reference) -> None:
        super().__init__(scenes)
        self._reference_key = reference.image.tobytes()

    def segment(self, image, **kwargs):
        segmentation = super().segment(image, **kwargs)
        if np.ascontiguousarray(image).tobytes() == self._reference_key:
            return segmentation
        scene = self.scene_of(image)
        piece = np.zeros(image.shape[:2], bool)
        piece[250:300, 340:420] = True
        piece &= scene.parts[0].mask
        for defect in scene.defects:
            piece &= ~defect.mask
        masks = [i.mask for i in scene.instances if i.visible] + [piece]
        return segmentation_of(masks, (image.shape[1], image.shape[0]))


def test_a_piece_of_unchanged_surface_is_no_defect_with_the_change_check(setup):
    recipe, reference = setup
    good, bad = fixtured(1, defective=False), fixtured(2)
    checked = replace(recipe, defects=replace(recipe.defects, changed_fraction=0.08))
    plain = InspectionPipeline(recipe, segmenter=FragmentingSegmenter([reference, good, bad], reference))
    assert plain.inspect(good.image).verdict == "FAIL"  # the piece matches nothing on the reference
    pipeline = InspectionPipeline(checked, segmenter=FragmentingSegmenter([reference, good, bad], reference))
    assert pipeline.inspect(good.image).verdict == "PASS"
    result = pipeline.inspect(bad.image)
    assert result.verdict == "FAIL" and [f.label for f in result.findings] == ["defect"]


class DefectBlindSegmenter(TruthSegmenter):
    """A segmenter that sees the part and its prints but never a defect."""

    def segment(self, image, **kwargs):
        scene = self.scene_of(image)
        masks = [i.mask for i in scene.instances if i.visible and i.role != "defect"]
        return segmentation_of(masks, (image.shape[1], image.shape[0]))


def test_differences_report_a_defect_the_network_did_not_segment(setup):
    recipe, reference = setup
    good, bad = fixtured(1, defective=False), fixtured(2)
    scenes = [reference, good, bad]
    assert InspectionPipeline(recipe, segmenter=DefectBlindSegmenter(scenes)).inspect(bad.image).verdict == "PASS"
    checked = replace(recipe, defects=replace(recipe.defects, differences=True))
    pipeline = InspectionPipeline(checked, segmenter=DefectBlindSegmenter(scenes))
    assert pipeline.inspect(good.image).verdict == "PASS"
    result = pipeline.inspect(bad.image)
    assert result.verdict == "FAIL"
    (finding,) = result.findings
    assert finding.label == "difference"
    ys, xs = np.nonzero(bad.defects[0].mask)
    x1, y1, x2, y2 = finding.box
    assert abs(x1 - xs.min()) < 6 and abs(y1 - ys.min()) < 6 and abs(x2 - xs.max()) < 6 and abs(y2 - ys.max()) < 6
    assert 0.6 < finding.area / bad.defects[0].mask.sum() < 1.6


def test_a_segmented_defect_is_not_reported_again_as_a_difference(setup):
    recipe, reference = setup
    bad = fixtured(2)
    checked = replace(recipe, defects=replace(recipe.defects, differences=True))
    result = pipeline_for(checked, reference, bad).inspect(bad.image)
    assert [f.label for f in result.findings] == ["defect"]


def test_numpy_matrix_products_keep_off_the_cores_the_network_needs(setup):
    from threadpoolctl import threadpool_info

    recipe, reference = setup
    pipeline_for(recipe, reference)
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


@pytest.mark.parametrize("own_network", [True, False], ids=["own network", "given segmenter"])
def test_a_reference_that_cannot_be_read_is_a_recipe_error_naming_it(tmp_path, own_network):
    from inspector.errors import RecipeError

    recipe, reference = fixtured_recipe(tmp_path)
    (tmp_path / "ref.png").write_bytes(b"not a picture")
    segmenter = None if own_network else TruthSegmenter([reference])
    with pytest.raises(RecipeError, match=r"product\.reference_image: .*ref\.png"):
        InspectionPipeline(recipe, segmenter=segmenter, device="cpu")


def test_a_pipeline_that_checks_its_recipe_decodes_the_reference_once_and_names_every_problem(tmp_path, monkeypatch):
    import inspector.engine.preflight as validate
    from inspector.errors import RecipeError

    recipe, reference = fixtured_recipe(tmp_path)
    reads = []
    read_image = validate.read_image
    monkeypatch.setattr(validate, "read_image", lambda path: reads.append(path) or read_image(path))
    pipeline = InspectionPipeline(recipe, segmenter=TruthSegmenter([reference]), validate=True)
    assert len(reads) == 1
    assert np.array_equal(pipeline.reference_image, reference.image)

    broken = replace(
        recipe,
        model=replace(recipe.model, weights="nowhere.pt"),
        part=replace(recipe.part, boxes=((0.0, 0.0, 5000.0, 10.0),)),
    )
    with pytest.raises(RecipeError) as caught:
        InspectionPipeline(broken, segmenter=TruthSegmenter([reference]), validate=True)
    assert "model.weights: model weights not found" in str(caught.value)
    assert "part.boxes[0]: box (0, 0, 5000, 10) is outside the 640x480 reference image" in str(caught.value)


def test_a_recipe_without_its_model_is_refused_before_torch_is_imported(tmp_path):
    import subprocess
    import sys

    from inspector.recipe.io import save_recipe

    recipe, _ = fixtured_recipe(tmp_path)
    broken = save_recipe(replace(recipe, model=replace(recipe.model, weights="nowhere.pt")), tmp_path / "broken.yaml")
    code = f"""
import sys
from inspector.engine.pipeline import InspectionPipeline
from inspector.errors import RecipeError
from inspector.recipe.io import load_recipe
try:
    InspectionPipeline(load_recipe({str(broken.source)!r}), validate=True)
except RecipeError as exc:
    print("refused; torch imported:", "torch" in sys.modules, exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused; torch imported: False") and "model.weights: model weights not found" in out


def test_a_monochrome_image_of_a_part_with_a_colour_reference_is_an_error_not_a_fail(setup):
    import cv2

    from inspector.engine.image import colour_share, is_monochrome

    recipe, reference = setup
    good = fixtured(1, defective=False)
    mono = cv2.cvtColor(cv2.cvtColor(good.image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    pipeline = pipeline_for(recipe, reference, good)
    result = pipeline.inspect(mono)
    assert result.verdict == "ERROR" and "has no colour but the recipe's reference has" in result.error
    assert pipeline.inspect(good.image).verdict == "PASS"
    assert is_monochrome(mono) and not is_monochrome(good.image)
    assert colour_share(reference.image) > 0.01 and colour_share(mono) == 0.0
