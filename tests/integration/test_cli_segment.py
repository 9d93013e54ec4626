"""``inspector segment`` and ``inspector demo`` run for real on the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inspector.cli import main
from inspector.engine.image import read_image, write_image
from inspector.recipe.io import load_recipe
from inspector.synthetic.demo_product import demo_scene

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def demo_part(tmp_path_factory):
    """A fresh defective demo part (seed not used by training or the model card)."""
    scene = demo_scene(np.random.default_rng(777), defective=True)
    path = tmp_path_factory.mktemp("images") / "part.png"
    write_image(path, scene.image)
    return path, scene


def _box(mask):
    ys, xs = np.nonzero(mask)
    return f"{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}"


def test_box_prompt_outlines_the_part(demo_part, tmp_path, capsys):
    path, scene = demo_part
    part = scene.parts[0].mask
    out = tmp_path / "mask.png"
    overlay = tmp_path / "overlay.png"
    status = main(["segment", str(path), "--box", _box(part), "--out", str(out), "--overlay", str(overlay), "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["name"] == "inspector-seg-n" and len(report["selected"]) == 1
    mask = read_image(out)[..., 0] > 127
    iou = (mask & part).sum() / (mask | part).sum()
    assert iou > 0.85, f"part outlined with IoU {iou:.2f}"
    assert read_image(overlay).shape == read_image(path).shape


def test_point_prompt_on_a_defect_selects_it(demo_part, tmp_path, capsys):
    path, scene = demo_part
    visible = [d for d in scene.defects if d.visible]
    if not visible:
        pytest.skip("this demo part has only a missing print")
    defect = visible[0].mask
    ys, xs = np.nonzero(defect)
    k = len(xs) // 2
    out = tmp_path / "defect.png"
    status = main(["segment", str(path), "--point", f"{xs[k]},{ys[k]}", "--mode", "instances", "--out", str(out)])
    assert status == 0
    mask = read_image(out)[..., 0] > 127
    # The smallest selected segment around the point is the defect; the part may come too.
    assert (mask & defect).sum() >= 0.5 * defect.sum()


def test_prompt_outside_the_image_is_a_clear_error(demo_part, capsys):
    path, _ = demo_part
    status = main(["segment", str(path), "--point", "5000,10"])
    assert status == 2
    err = capsys.readouterr().err
    assert "point (5000, 10) is outside the 640x480 image" in err and "part.png" in err


def test_missing_fastsam_weights_say_where_to_put_them(demo_part, capsys):
    path, _ = demo_part
    status = main(["segment", str(path), "--weights", "FastSAM-s.pt"])
    assert status == 2
    err = capsys.readouterr().err
    assert "FastSAM-s.pt" in err and "models" in err


def test_demo_runs_end_to_end_from_the_installed_command(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "demo", "--count", "6", "--seed", "31", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # --json: nothing else on stdout
    assert summary["inspected"] == 6 and summary["defective_parts"] == 3
    assert {"recall_defective_parts", "false_reject_rate", "defects_localised"} <= set(summary)
    assert summary["anomaly_auroc"] is not None  # taught from fresh good parts first
    assert load_recipe(out / "recipe" / "demo-label.yaml").taught
    assert len(list((out / "images").glob("*.png"))) == 6
    assert (out / "report.html").exists() and (out / "inspector.db").exists()
    assert json.loads((out / "summary.json").read_text())["seed"] == 31
    # Again into the same folder, with fewer parts: a fresh demo, not mixed with the last one.
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "demo", "--count", "2", "--seed", "32", "--out", str(out), "--json"]
        + ["--teach", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["inspected"] == 2 and again["anomaly_auroc"] is None
    assert len(list((out / "images").glob("*.png"))) == 2


def test_demo_leaves_a_folder_it_did_not_make_alone(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "my_photo.jpg").write_text("mine")  # a name the demo uses too
    assert main(["demo", "--count", "2", "--out", str(tmp_path)]) == 2
    assert "is not empty and was not made by the demo" in capsys.readouterr().err
    assert [p.name for p in tmp_path.rglob("*")] == ["images", "my_photo.jpg"]


def test_text_prompt_combines_with_a_box(demo_part, capsys, tiny_clip):
    config, checkpoint = tiny_clip
    path, scene = demo_part
    prompts = ["--text", "stain", *("--clip-model", str(config), "--clip-weights", str(checkpoint))]
    prompts += ["--box", _box(scene.parts[0].mask), "--json"]
    assert main(["segment", str(path), *prompts, "--text-threshold", "1"]) == 0
    (box_only,) = json.loads(capsys.readouterr().out)["selected"]  # no text reaches probability 1
    assert main(["segment", str(path), *prompts, "--text-threshold", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    # At threshold 0 every segment for which "stain" beats the negatives joins the box's segment.
    assert box_only in report["selected"] and len(report["selected"]) <= report["instances"]


def test_text_prompt_without_clip_weights_says_how_to_get_them(demo_part, capsys):
    path, _ = demo_part
    status = main(["segment", str(path), "--text", "scratch"])
    assert status != 0
    err = capsys.readouterr().err
    assert "CLIP weights ViT-B-32 laion2b_s34b_b79k are not here" in err and "--download" in err


@pytest.mark.parametrize("name", ["weights.png", "weights.pt"])
def test_weights_that_are_not_a_checkpoint_are_an_error_naming_the_file(demo_part, tmp_path, capsys, name):
    path, _ = demo_part
    (tmp_path / name).write_text("not a model")
    status = main(["segment", str(path), "--weights", str(tmp_path / name), "--out", str(tmp_path / "m.png")])
    assert status == 2
    assert f"cannot load {tmp_path / name} as segmentation weights" in capsys.readouterr().err


class _Payload:
    """What a crafted checkpoint carries: a call the unpickler would make."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_weights_that_would_run_code_are_refused_and_nothing_runs(demo_part, tmp_path, capsys):
    import torch

    path, _ = demo_part
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "FastSAM-s.pt"
    torch.save({"model": _Payload(marker), "date": "2024-01-01"}, evil)
    status = main(["segment", str(path), "--weights", str(evil), "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert status == 2
    assert not marker.exists()
    assert f"cannot load {evil} as segmentation weights" in err and "system" in err and "run code" in err


@pytest.mark.parametrize(("option", "value"), [("--iou", "2"), ("--conf", "nan"), ("--text-threshold", "1.5")])
def test_thresholds_outside_0_to_1_are_refused(capsys, option, value):
    with pytest.raises(SystemExit) as stopped:
        main(["segment", "part.png", option, value])
    assert stopped.value.code == 2
    assert f"argument {option}: '{value}' must be a number from 0 to 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--imgsz", "100000", "must be a whole number of pixels from 32 to 4096"),
        ("--imgsz", "0", "must be a whole number of pixels from 32 to 4096"),
        ("--point", "nan,5", "must be X,Y or X,Y,LABEL"),
        ("--point", "5,inf,1", "must be X,Y or X,Y,LABEL"),
        ("--box", "0,0,nan,10", "must be X1,Y1,X2,Y2"),
    ],
)
def test_sizes_and_prompts_that_cannot_be_used_are_refused_before_the_image_is_read(capsys, option, value, says):
    with pytest.raises(SystemExit) as stopped:
        main(["segment", "part.png", option, value])  # part.png does not exist: never read
    assert stopped.value.code == 2
    assert f"argument {option}:" in (err := capsys.readouterr().err) and f"{value!r} {says}" in err


def test_an_export_size_that_cannot_be_used_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["export", "--imgsz", "-5"])
    assert stopped.value.code == 2
    assert "argument --imgsz: '-5' must be a whole number of pixels from 32 to 4096" in capsys.readouterr().err
