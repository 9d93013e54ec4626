"""Teaching a recipe from good photographs and measuring it: the real feature network and
segmenter on real cookies (Amazon Lookout for Vision's sample set, CC BY-SA 4.0)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.recipe.io import load_recipe
from tests.helpers import shared_data

COOKIES = shared_data("lookout_cookies", "cookie")

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(COOKIES is None, reason="the shared cookie photographs (../shared/data) are not here"),
]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A small labelled folder in the MVTec AD layout: 3 good, 3 cracked, their masks.

    (Taught from these four, the full set's only false reject is test-normal-1, whose
    tray edge glints: see README, Teaching from good parts.)"""
    root = tmp_path_factory.mktemp("cookies")
    for kind, names in (
        ("good", ["test-normal-2", "test-normal-3", "test-normal-4"]),
        ("cracked", ["anomaly-1", "anomaly-5", "anomaly-9"]),
    ):
        (root / "test" / kind).mkdir(parents=True)
        for name in names:
            shutil.copy(COOKIES / "test" / kind / f"{name}.jpg", root / "test" / kind)
            if kind != "good":
                (root / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                shutil.copy(COOKIES / "ground_truth" / kind / f"{name}_mask.png", root / "ground_truth" / kind)
    (root / "train" / "good").mkdir(parents=True)
    for name in ("normal-1", "normal-10", "normal-11", "normal-12"):
        shutil.copy(COOKIES / "train" / "good" / f"{name}.jpg", root / "train" / "good")
    return root


def _new_recipe(labelled: Path, out: Path) -> Path:
    reference = labelled / "train/good/normal-1.jpg"
    assert main(["recipe", "new", "--reference", str(reference), "--name", "Cookie", "--out", str(out)]) == 0
    return out


def test_a_recipe_taught_from_four_good_cookies_rejects_cracked_ones_and_passes_good_ones(labelled, tmp_path, capsys):
    _new_recipe(labelled, tmp_path / "cookie.yaml")
    capsys.readouterr()
    assert main(["teach", "--recipe", str(tmp_path / "cookie.yaml"), str(labelled / "train/good"), "--json"]) == 0
    taught = json.loads(capsys.readouterr().out)
    assert taught["taught"] == 4 and not taught["left_out"]
    recipe = load_recipe(tmp_path / "cookie.yaml")
    assert recipe.taught and recipe.detect == "anomaly"
    assert (tmp_path / recipe.anomaly.model).is_file() and recipe.anomaly.model == Path(taught["model_file"]).name
    # From 4 images the threshold is the highest of their leave-one-out scores, and says so.
    assert taught["threshold"] == max(taught["scores"]) and "at most 20 %" in taught["rule"]

    assert main(["evaluate", "--recipe", str(tmp_path / "cookie.yaml"), str(labelled), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["good"], figures["defective"], figures["errors"]) == (3, 3, 0)
    assert figures["image_auroc"] == 1.0 and figures["recall"] == 1.0 and figures["false_reject_rate"] == 0.0
    assert figures["pixel_auroc"] > 0.9 and figures["regions_found"] > 0.5

    db = tmp_path / "results.db"
    assert (
        main(
            ["run", "--recipe", str(tmp_path / "cookie.yaml"), str(labelled / "test"), "-r", "--db", str(db), "--json"]
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    verdicts = {
        Path(line["image"]).parent.name + "/" + Path(line["image"]).name: line for line in lines if "image" in line
    }
    assert all(v["verdict"] == ("PASS" if k.startswith("good") else "FAIL") for k, v in verdicts.items()), verdicts
    assert all(v["anomaly_score"] is not None for v in verdicts.values())
    crack = next(v for k, v in verdicts.items() if k.endswith("anomaly-5.jpg"))
    assert {d["label"] for d in crack["defects"]} == {"anomaly"}


def test_teaching_leaves_out_what_it_cannot_read_and_says_so(labelled, tmp_path, capsys):
    _new_recipe(labelled, tmp_path / "c.yaml")
    good = tmp_path / "good"
    shutil.copytree(labelled / "train/good", good)
    (good / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    capsys.readouterr()
    assert main(["teach", "--recipe", str(tmp_path / "c.yaml"), str(good), "--json"]) == 0
    taught = json.loads(capsys.readouterr().out)
    assert taught["taught"] == 4 and [item["image"] for item in taught["left_out"]] == [str(good / "broken.jpg")]
    assert "broken.jpg" in taught["left_out"][0]["why"]
    assert main(["teach", "--recipe", str(tmp_path / "c.yaml"), str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here: no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["teach", "--recipe", str(tmp_path / "c.yaml"), str(tmp_path / "empty")]) == 2
    assert "no image files" in capsys.readouterr().err


def test_evaluate_says_what_a_labelled_folder_needs(tmp_path, capsys):
    (tmp_path / "recipe").mkdir()
    assert main(["evaluate", "--recipe", str(tmp_path / "recipe" / "x.yaml"), str(tmp_path)]) == 2
    assert "MVTec AD layout" in capsys.readouterr().err
