"""Learning normal appearance: the memory bank, its threshold, and its file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from inspector.engine.backbone import DIMENSIONS, FeatureMap
from inspector.engine.normal import NormalModel, Teacher, _student_t, anomaly_values, calibrate, coreset, score_of
from inspector.engine.normal_file import load_normal_model, save_normal_model
from inspector.errors import EngineError


@pytest.mark.parametrize(("p", "dof", "expected"), [(0.05, 3, 2.3534), (0.01, 3, 4.5407), (0.01, 10, 2.7638)])
def test_the_t_quantile_matches_the_tables(p, dof, expected):
    assert _student_t(p, dof) == pytest.approx(expected, abs=2e-4)


def test_the_threshold_is_the_prediction_bound_of_a_good_parts_score_or_the_highest_score():
    scores = list(np.random.default_rng(5).normal(10.0, 1.0, 200))  # many images: the bound is below the highest
    calibration = calibrate(scores, 0.05)
    sd = np.std(scores, ddof=1)
    assert calibration.threshold == pytest.approx(np.mean(scores) + 1.6526 * sd * np.sqrt(1 + 1 / 200), rel=1e-3)
    assert calibration.threshold < max(scores)
    assert "95 % prediction bound" in calibration.rule and calibration.false_rejects == 0.05
    assert calibrate(scores, 0.01).threshold > calibration.threshold  # fewer false rejects asked: higher
    few = calibrate([10.0, 11.0, 12.0, 13.0], 0.01)  # a bound of 4 images is wider than their highest score
    assert few.threshold == 13.0 and few.false_rejects == pytest.approx(0.2) and "at most 20 %" in few.rule
    one = calibrate([20.0], 0.01)
    assert one.threshold == pytest.approx(22.0) and "no rate can be stated" in one.rule
    with pytest.raises(EngineError, match="no good image"):
        calibrate([], 0.01)


def test_a_coreset_keeps_the_rare_patches_and_bounds_the_bank():
    rng = np.random.default_rng(1)
    common = rng.normal(0, 0.1, (2000, DIMENSIONS)).astype(np.float32)
    rare = np.full((1, DIMENSIONS), 5.0, np.float32)
    patches = np.concatenate([common, rare])
    chosen = coreset(patches, 50, np.random.default_rng(2))
    assert len(chosen) == 50 == len(set(chosen.tolist()))
    assert len(patches) - 1 in chosen  # the one unlike the others is kept
    assert np.array_equal(coreset(patches[:30], 50, rng), np.arange(30))  # fewer than asked: all


def _features(rng, grid=(12, 16), *, spot=None) -> FeatureMap:
    """A texture of patches like each other; ``spot`` (y, x) holds one unlike them."""
    values = rng.normal(0, 0.2, (*grid, DIMENSIONS)).astype(np.float32) + 1.0
    if spot is not None:
        values[spot] = -3.0
    return FeatureMap(values, (grid[1] * 8, grid[0] * 8))


@pytest.mark.parametrize("taught", [1, 4])
def test_a_patch_unlike_the_good_parts_scores_above_the_threshold_and_good_ones_below(taught):
    rng = np.random.default_rng(7)
    teacher = Teacher(resolution=96, expected_images=taught)
    everywhere = np.ones((12, 16), bool)
    for _ in range(taught):
        teacher.add(_features(rng), everywhere)
    model = teacher.finish(false_rejects=0.01)
    assert model.images == taught and len(model.calibration.scores) == taught
    good = score_of(*anomaly_values(model.distances(_features(rng)), everywhere))
    spotted = model.distances(_features(rng, spot=(5, 9)))
    assert good < model.threshold < score_of(*anomaly_values(spotted, everywhere))
    assert np.unravel_index(np.argmax(spotted), spotted.shape) == (5, 9)
    only_corner = np.zeros((12, 16), bool)
    only_corner[:2, :2] = True
    assert model.distances(_features(rng, spot=(5, 9)), only_corner)[5, 9] == 0  # not looked at: not searched


def test_one_image_of_a_part_a_few_patches_wide_still_gets_a_threshold():
    teacher = Teacher(resolution=96, expected_images=1)
    small = np.zeros((12, 16), bool)
    small[4:7, 6:9] = True  # every patch has all the others in its own neighbourhood
    teacher.add(_features(np.random.default_rng(9)), small)
    assert np.isfinite(teacher.finish(false_rejects=0.01).threshold)


def test_copies_of_one_image_are_refused_with_a_reason():
    features = _features(np.random.default_rng(10))
    teacher = Teacher(resolution=96, expected_images=2)
    for _ in range(2):
        teacher.add(features, np.ones((12, 16), bool))
    with pytest.raises(EngineError, match="copies of one image"):
        teacher.finish(false_rejects=0.01)


def test_a_part_region_without_patches_is_refused():
    with pytest.raises(EngineError, match="holds no patch"):
        Teacher(resolution=96, expected_images=1).add(_features(np.random.default_rng(0)), np.zeros((12, 16), bool))


def _model(rng) -> NormalModel:
    teacher = Teacher(resolution=96, expected_images=2)
    for _ in range(2):
        teacher.add(_features(rng), np.ones((12, 16), bool))
    return teacher.finish(false_rejects=0.02)


def test_a_normal_model_file_round_trips_and_is_named_by_its_content(tmp_path):
    model = _model(np.random.default_rng(3))
    path = save_normal_model(model, tmp_path, "washer", product="Washer")
    assert path.name.startswith("washer.normal-") and path.suffix == ".npz"
    again = load_normal_model(path)
    assert again.resolution == 96 and again.images == 2
    assert again.calibration == model.calibration
    np.testing.assert_allclose(again.bank, model.bank, atol=2e-3)  # stored in half precision
    assert save_normal_model(model, tmp_path, "washer", product="Washer") == path  # same content, same name


def _archive(**members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not a zip at all", "not a readable normal model"),
        (_archive(**{"other.npy": _npy(np.zeros(3))}), "not a normal model of Inspector's"),
        (
            _archive(**{"bank.npy": _npy(np.array([object()])), "meta.npy": _npy(np.zeros(2))}),
            "not an array of numbers",
        ),
        (
            _archive(**{"bank.npy": _npy(np.zeros((4, DIMENSIONS), np.float16))[:128], "meta.npy": _npy(np.zeros(2))}),
            "not an array of numbers of the size it claims",
        ),
    ],
    ids=["not-a-zip", "other-members", "pickled-objects", "claims-more-than-it-holds"],
)
def test_a_hostile_or_damaged_normal_model_is_refused_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(EngineError, match=fragment) as err:
        load_normal_model(path)
    assert str(path) in str(err.value)


def test_a_normal_model_changed_after_it_was_named_is_refused(tmp_path):
    path = save_normal_model(_model(np.random.default_rng(4)), tmp_path, "washer")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="does not match the hash in its name"):
        load_normal_model(path)
    with pytest.raises(EngineError, match="no such normal model file"):
        load_normal_model(tmp_path / "gone.normal-0123456789ab.npz")


def _members(bank, meta: dict, *, compression=zipfile.ZIP_STORED) -> bytes:
    import json

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("bank.npy", _npy(bank))
        archive.writestr("meta.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
    return buffer.getvalue()


def _meta(**changes) -> dict:
    meta = {
        "format": "inspector-normal-model",
        "version": 1,
        "backbone": "tf_efficientnet_lite0",
        "dimensions": DIMENSIONS,
        "resolution": 192,
        "images": 3,
        "calibration": {"scores": [1.0, 2.0], "false_rejects": 0.01, "threshold": 3.0, "spread": 0.5, "rule": "r"},
    }
    meta.update(changes)
    return meta


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (_members(np.zeros((4, DIMENSIONS), np.float16), _meta(), compression=zipfile.ZIP_DEFLATED), "compressed"),
        (
            _members(
                np.zeros((4, DIMENSIONS), np.float16),
                _meta(
                    calibration={
                        "scores": [1.0],
                        "false_rejects": 0.01,
                        "threshold": float("nan"),
                        "spread": 1.0,
                        "rule": "r",
                    }
                ),
            ),
            "threshold is damaged",
        ),
        (_members(np.zeros((4, DIMENSIONS), np.float16), _meta(resolution=-5)), "resolution -5"),
        (_members(np.zeros((0, DIMENSIONS), np.float16), _meta()), "0 patches"),
    ],
    ids=["deflated", "nan-threshold", "negative-resolution", "empty-bank"],
)
def test_a_normal_model_with_values_no_teaching_writes_is_refused(tmp_path, content, fragment):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(EngineError, match=fragment) as err:
        load_normal_model(path)
    assert str(path) in str(err.value)


def test_a_border_band_along_the_part_is_left_out_of_the_search():
    from types import SimpleNamespace

    from inspector.engine.regions import Regions
    from inspector.engine.stages.anomaly import searched_region

    part = np.zeros((40, 60), bool)
    part[10:30, 10:50] = True
    regions = Regions(frozenset(), part, frozenset(), np.zeros_like(part))
    work = SimpleNamespace(regions=regions, segmentation=SimpleNamespace(scale=0.25, masks=np.zeros((0, 40, 60), bool)))
    assert searched_region(work).sum() == part.sum()
    banded = searched_region(work, border=8.0)  # 8 image pixels: 2 cells of the quarter-scale grid
    assert banded.sum() == (20 - 4) * (40 - 4) and not banded[10:12].any() and banded[12:28, 12:48].all()
    whole = Regions(frozenset(), np.ones((40, 60), bool), frozenset(), np.zeros((40, 60), bool))
    work.regions = whole
    assert searched_region(work, border=4.0).sum() == (40 - 2) * (60 - 2)  # the frame's edge too
