"""CLIP text classes and exemplars.

The wiring (weights, crops, masking, batching, caching) runs a real open_clip model:
a tiny one built from a local configuration, with random weights saved to a file, so
nothing is downloaded. The classification logic runs with a deterministic stand-in
encoder that embeds a segment by its shape: thin (a scratch) or solid (a stain).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inspector.engine.clip import (
    ClipUnavailable,
    Prototypes,
    SegmentClassifier,
    classify,
    clip_encoder,
    masked_crop,
    resolve_clip,
)
from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.preflight import validate_recipe
from inspector.engine.prompts import select_segments, select_text
from inspector.errors import RecipeError
from inspector.recipe.io import dump_recipe, load_recipe, parse_recipe, save_recipe
from inspector.recipe.model import ClipSettings, Exemplar
from tests.helpers import TruthSegmenter, fixtured, fixtured_recipe, segmentation_of


@pytest.fixture(scope="session")
def tiny_encoder(tiny_clip):
    config, checkpoint = tiny_clip
    return clip_encoder(resolve_clip(str(config), str(checkpoint)), device="cpu")


# -- weights ---------------------------------------------------------------------------


def test_missing_weights_say_how_to_provide_them_without_touching_the_network(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ClipUnavailable) as info:
        resolve_clip("ViT-B-32", None)
    message = str(info.value)
    assert "laion2b_s34b_b79k" in message and "put an open_clip checkpoint" in message and "--download" in message


def test_unknown_model_and_wrong_checkpoint_are_named(tiny_clip, tmp_path):
    config, _ = tiny_clip
    with pytest.raises(ClipUnavailable, match="unknown CLIP model 'ViT-Nope'"):
        resolve_clip("ViT-Nope", "x.bin")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ClipUnavailable, match=r"broken\.pt"):
        clip_encoder(resolve_clip(str(config), str(broken)), device="cpu")


def test_weights_are_found_by_file_name_in_the_clip_model_folder(tiny_clip):
    from inspector.engine.clip import clip_dir

    config, checkpoint = tiny_clip
    clip_dir().mkdir(parents=True)
    (clip_dir() / "mine.pt").write_bytes(checkpoint.read_bytes())
    assert resolve_clip(str(config), "mine.pt").path == (clip_dir() / "mine.pt").resolve()


# -- crops and the real encoder --------------------------------------------------------


def test_masked_crop_blanks_outside_the_mask_and_keeps_the_shape_whole():
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 2] = 200  # red in BGR
    mask = np.zeros((10, 40), bool)
    mask[3:7, :] = True  # a thin horizontal bar inside a 40 x 10 box
    crop = masked_crop(image, (50, 20), mask, 50, fill=(0, 255, 0))
    assert crop.shape == (50, 50, 3)
    red = (crop[..., 0] > 150) & (crop[..., 1] < 60)
    rows, cols = np.nonzero(red)
    assert cols.max() - cols.min() > 3 * (rows.max() - rows.min())  # still a horizontal bar
    assert (crop[0, 0] == (0, 255, 0)).all() and (crop[25, 25] == (200, 0, 0)).all()


def test_text_is_encoded_once_per_string_and_embeddings_are_unit_vectors(tiny_encoder):
    before = tiny_encoder.text_encodes
    first = tiny_encoder.encode_texts(["a photo of a dent", "a photo of a burr"])
    again = tiny_encoder.encode_texts(["a photo of a burr", "a photo of a dent"])
    assert tiny_encoder.text_encodes == before + 2
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(again[::-1], first)


def test_crops_are_batched_without_changing_their_embeddings(tiny_encoder, rng):
    crops = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(7)]
    one_by_one = np.concatenate([tiny_encoder.encode_crops([c]) for c in crops])
    tiny_encoder.batch_size = 3
    try:
        batched = tiny_encoder.encode_crops(crops)
    finally:
        tiny_encoder.batch_size = 16
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert batched.shape == (7, 32)


def test_the_encoder_is_loaded_once_per_checkpoint_and_crop_size(tiny_clip, tiny_encoder, rng):
    config, checkpoint = tiny_clip
    weights = resolve_clip(str(config), str(checkpoint))
    assert clip_encoder(weights, device="cpu") is tiny_encoder
    smaller = clip_encoder(weights, device="cpu", image_size=16)
    assert smaller is not tiny_encoder and smaller.image_size == 16
    crop = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert smaller.encode_crops([crop]).shape == (1, 32)


def test_real_encoder_classifies_segments_of_an_image(tiny_encoder):
    scene = fixtured(2)
    segmentation = TruthSegmenter([scene]).segment(scene.image)
    classifier = SegmentClassifier(tiny_encoder, classes=["stain"], negatives=["a normal surface"], threshold=0.0)
    patches = [segmentation.mask_in_box(i) for i in range(len(segmentation))]
    results = classifier.classify(scene.image, patches)
    assert len(results) == len(segmentation)
    assert all(r.label in ("stain", "a normal surface") and 0 <= r.score <= 1 for r in results)


# -- classification logic, with a stand-in encoder ---------------------------------------

FILL = (255, 0, 255)


class ShapeEncoder:
    """Embeds a masked crop by how much of it the segment fills: thin lines vs blobs."""

    logit_scale = 20.0
    image_size = 48

    def __init__(self):
        self.texts: list[str] = []

    def crops(self, image, patches):
        return [masked_crop(image, origin, mask, self.image_size, FILL) for origin, mask in patches]

    def encode_crops(self, crops):
        out = []
        for crop in crops:
            filled = 1 - (np.abs(crop.astype(int) - FILL).sum(axis=2) < 30).mean()
            solid = min(1.0, filled / 0.3)
            out.append([solid, 1 - solid])
        vectors = np.array(out, np.float64) + 1e-6
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    def encode_texts(self, texts):
        self.texts += texts
        table = {"stain": [1, 0], "scratch": [0, 1], "line": [0, 1]}
        rows = [next((v for k, v in table.items() if k in t), [0.7, 0.7]) for t in texts]
        vectors = np.array(rows, np.float64)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_best_class_threshold_and_negative_classes():
    prototypes = Prototypes(np.eye(3, dtype=np.float32), ("scratch", "stain", "normal"), frozenset({"normal"}))
    embeddings = np.array([[1, 0, 0], [0.705, 0.709, 0], [0, 0, 1]], np.float32)
    sure, unsure, normal = classify(embeddings, prototypes, logit_scale=50, threshold=0.6)
    assert sure.label == "scratch" and sure.score > 0.9 and not sure.negative
    assert unsure.label is None and unsure.score < 0.6  # stays an unlabelled defect
    assert normal.negative and normal.label == "normal"


def test_prompt_ensemble_and_exemplars_share_a_class():
    encoder = ShapeEncoder()
    classifier = SegmentClassifier(encoder, classes=["scratch"], templates=("a {} on a part", "a close-up of a {}"))
    assert encoder.texts == ["a scratch on a part", "a close-up of a scratch"]
    classifier.add_exemplars("scratch", np.array([[0.0, 1.0]], np.float32))
    classifier.add_exemplars("ok", np.array([[1.0, 0.0]], np.float32), negative=True)
    assert classifier.prototypes.names == ("scratch", "scratch", "ok")
    (result,) = classify(
        np.array([[0.1, 1.0]]) / np.hypot(0.1, 1.0), classifier.prototypes, logit_scale=20, threshold=0.5
    )
    assert result.label == "scratch" and result.score > 0.9  # both scratch prototypes add up


def scratch_and_stain_scene():
    """A fixtured part with one scratch and one stain, and the perfect segmentation of it."""
    scratch, stain = fixtured(34, kinds=("scratch",)), fixtured(6, kinds=("stain",))
    image = scratch.image.copy()
    image[stain.defects[0].mask] = stain.image[stain.defects[0].mask]
    masks = [scratch.parts[0].mask, scratch.defects[0].mask, stain.defects[0].mask]
    return image, segmentation_of(masks, (image.shape[1], image.shape[0]))


def test_text_prompt_returns_every_segment_above_the_threshold_not_only_the_best():
    image, segmentation = scratch_and_stain_scene()
    second = segmentation_of(
        [segmentation.full_mask(i) for i in range(3)] + [np.roll(segmentation.full_mask(1), 60, axis=1)],
        segmentation.image_size,
    )
    image[np.roll(segmentation.full_mask(1), 60, axis=1)] = 30  # a second scratch
    classifier = SegmentClassifier(ShapeEncoder(), classes=["scratch"], negatives=["stain"], threshold=0.5)
    chosen = select_text(second, image, classifier, candidates=[1, 2, 3])
    assert chosen.tolist() == [1, 3]
    union = select_segments(second, boxes=np.array([second.boxes[2]]), also=chosen)
    assert union.indices.tolist() == [1, 2, 3]


# -- recipes ---------------------------------------------------------------------------


@pytest.fixture
def labelled(tmp_path):
    recipe, reference = fixtured_recipe(tmp_path)
    return recipe, reference


def test_recipe_classes_label_defects_and_negative_classes_drop_them(labelled):
    recipe, reference = labelled
    scratched, stained = fixtured(34, kinds=("scratch",)), fixtured(6, kinds=("stain",))
    segmenter = TruthSegmenter([reference, scratched, stained])
    classes = replace(recipe, defects=replace(recipe.defects, classes=("scratch", "stain")))
    pipeline = InspectionPipeline(
        classes, segmenter=segmenter, classifier=SegmentClassifier(ShapeEncoder(), classes=("scratch", "stain"))
    )
    assert [f.label for f in pipeline.inspect(scratched.image).findings] == ["scratch"]
    result = pipeline.inspect(stained.image)
    assert [f.label for f in result.findings] == ["stain"] and result.findings[0].score > 0.5
    assert "classify" in result.timings

    # Stains are a normal surface of this product: they no longer fail it.
    tolerant = replace(recipe, defects=replace(recipe.defects, classes=("scratch",), negative_classes=("stain",)))
    classifier = SegmentClassifier(ShapeEncoder(), classes=("scratch",), negatives=("stain",))
    pipeline = InspectionPipeline(tolerant, segmenter=segmenter, classifier=classifier)
    assert pipeline.inspect(stained.image).verdict == "PASS"
    assert pipeline.inspect(scratched.image).verdict == "FAIL"


def test_exemplar_points_teach_a_class_from_an_example_image(labelled, tmp_path):
    from inspector.engine.image import write_image

    recipe, reference = labelled
    example, scratched = fixtured(28, kinds=("scratch",)), fixtured(34, kinds=("scratch",))
    write_image(tmp_path / "example.png", example.image)
    ys, xs = np.nonzero(example.defects[0].mask)
    k = len(xs) // 2
    exemplar = Exemplar(float(xs[k]), float(ys[k]), 1, "hairline", "example.png")
    taught = replace(recipe, defects=replace(recipe.defects, exemplars=(exemplar,), class_threshold=0.5))
    encoder = ShapeEncoder()
    classifier = SegmentClassifier(encoder, classes=("stain",))
    pipeline = InspectionPipeline(
        taught, segmenter=TruthSegmenter([reference, example, scratched]), classifier=classifier
    )
    assert [f.label for f in pipeline.inspect(scratched.image).findings] == ["hairline"]
    assert "hairline" in classifier.prototypes.names


def test_recipes_without_classes_never_build_a_classifier(labelled):
    recipe, reference = labelled
    pipeline = InspectionPipeline(recipe, segmenter=TruthSegmenter([reference, fixtured(5)]))
    assert pipeline.reference is not None
    assert pipeline._stage_context().classifier is None


def test_class_settings_round_trip_and_leave_other_recipes_unchanged(labelled):
    recipe, _ = labelled
    text = dump_recipe(recipe)
    assert "clip" not in text and "negative_classes" not in text
    rules = replace(
        recipe.defects,
        classes=("scratch",),
        negative_classes=("a normal surface",),
        class_threshold=0.4,
        exemplars=(Exemplar(10, 12), Exemplar(30, 40, 0, "print"), Exemplar(5, 6, 1, "dent", "ex.png")),
    )
    full = replace(recipe, defects=rules, clip=ClipSettings("ViT-B-16", "my-clip.bin", 160))
    again = parse_recipe(dump_recipe(full))
    assert again.defects == rules and again.clip == full.clip


def test_bad_class_settings_are_named(tmp_path):
    recipe, _ = fixtured_recipe(tmp_path)
    text = dump_recipe(recipe).replace(
        "  classes: []\n  exemplars: []\n",
        "  classes: [scratch, 3]\n  class_threshold: 2\n  exemplars:\n  - {point: [1, 2, 5], colour: red}\n",
    )
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, source=tmp_path / "bad.yaml")
    message = str(info.value)
    assert "defects.classes: must be a list of non-empty strings" in message
    assert "defects.class_threshold: must be <= 1.0" in message
    assert "defects.exemplars[0].colour: unknown key" in message
    assert "defects.exemplars[0].point: label must be 1" in message


def test_validation_offline_without_clip_weights_says_how_to_provide_them(tmp_path):
    recipe, _ = fixtured_recipe(tmp_path)
    saved = save_recipe(replace(recipe, defects=replace(recipe.defects, classes=("scratch",))), tmp_path / "c.yaml")
    with pytest.raises(RecipeError) as info:
        validate_recipe(load_recipe(saved.source))
    assert "defects.classes: need CLIP" in str(info.value) and "put an open_clip checkpoint" in str(info.value)


def test_validation_passes_with_local_clip_weights(tmp_path, tiny_clip):
    config, checkpoint = tiny_clip
    recipe, _ = fixtured_recipe(tmp_path)
    with_classes = replace(
        recipe,
        defects=replace(recipe.defects, classes=("scratch",)),
        clip=ClipSettings(str(config), str(checkpoint)),
    )
    validate_recipe(load_recipe(save_recipe(with_classes, tmp_path / "c.yaml").source))


def damaged_clip_recipe(folder, tiny_clip):
    """A saved recipe with a text class whose CLIP checkpoint (in the CLIP folder) is damaged."""
    from inspector.engine.clip import clip_dir

    config, _ = tiny_clip
    clip_dir().mkdir(parents=True)
    (clip_dir() / "damaged.pt").write_bytes(b"\0" * 64)
    recipe, _ = fixtured_recipe(folder)
    with_classes = replace(
        recipe, defects=replace(recipe.defects, classes=("scratch",)), clip=ClipSettings(str(config), "damaged.pt")
    )
    return save_recipe(with_classes, folder / "c.yaml").source


def test_recipe_validate_loads_the_clip_checkpoint_and_names_a_damaged_one(tmp_path, tiny_clip, capsys):
    from inspector.cli import main

    assert main(["recipe", "validate", str(damaged_clip_recipe(tmp_path, tiny_clip))]) != 0
    out = capsys.readouterr()
    assert "defects.classes: need CLIP" in out.out + out.err


def test_a_recipe_class_without_negative_classes_is_weighed_against_a_normal_surface(labelled):
    from inspector.engine.defect_classes import recipe_classifier

    recipe, reference = labelled
    stained = fixtured(6, kinds=("stain",))
    only_scratches = replace(recipe, defects=replace(recipe.defects, classes=("scratch",)))
    classifier = recipe_classifier(only_scratches, encoder=ShapeEncoder())
    pipeline = InspectionPipeline(only_scratches, segmenter=TruthSegmenter([reference, stained]), classifier=classifier)
    # A stain is nothing like a scratch: it is not labelled one (the default negatives win).
    assert all(f.label != "scratch" for f in pipeline.inspect(stained.image).findings)


def test_a_clip_model_that_fails_to_load_stops_the_run_before_anything_is_written(tmp_path, tiny_clip, capsys):
    from inspector.cli import main
    from inspector.engine.image import write_image

    recipe = damaged_clip_recipe(tmp_path, tiny_clip)
    write_image(tmp_path / "parts" / "p.png", fixtured(6).image)
    db = tmp_path / "r.db"
    status = main(["run", "--recipe", str(recipe), str(tmp_path / "parts"), "--db", str(db)])
    assert status == 2 and "damaged.pt" in capsys.readouterr().err
    assert not db.exists()
