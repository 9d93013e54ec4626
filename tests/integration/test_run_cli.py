"""``inspector run`` for real: the embedded model, the demo recipe, bad input, kills and locks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.cli import main
from inspector.engine.image import write_image
from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def demo_line(tmp_path_factory):
    """The demo recipe and a few fresh parts (seeds no test or model card uses)."""
    root = tmp_path_factory.mktemp("line")
    recipe = write_demo_recipe(root / "recipe")
    rng = np.random.default_rng(4242)
    background = demo_background()
    images = []
    for k in range(4):
        scene = demo_scene(rng, defective=k % 2 == 1, background=background)
        images.append(scene.image)
    return recipe, images, root


def inspector(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True, timeout=timeout)


def db_rows(db: Path, sql: str):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_bad_input_becomes_error_rows_and_the_run_goes_on(demo_line, tmp_path, capsys):
    recipe, images, _ = demo_line
    good = images[0]
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "empty.png").write_bytes(b"")
    encoded = cv2.imencode(".jpg", good)[1].tobytes()
    (folder / "truncated.jpg").write_bytes(encoded[: len(encoded) // 2])
    (folder / "notes.png").write_text("this is not an image")
    cv2.imwrite(str(folder / "deep.tif"), good.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(good, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "gray.bmp"), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))
    write_image(folder / "tiny.png", good[:1, :1])
    write_image(folder / "huge.jpg", cv2.resize(good, (4000, 3000)))
    write_image(folder / "prüfteil_测试.png", good)
    (folder / "vanished.png").symlink_to(folder / "nowhere.png")
    db = tmp_path / "results.db"

    status = main(["run", "--recipe", str(recipe), str(folder), "--db", str(db), "--json"])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    per_image = {Path(line["image"]).name: line for line in lines if "image" in line}
    assert len(per_image) == 10
    rows = dict(db_rows(db, "SELECT image_path, verdict FROM inspections"))
    assert len(rows) == 10, "exactly one row per image"
    for name, fragment in [
        ("empty.png", "empty file"),
        ("truncated.jpg", "truncated"),
        ("notes.png", "not a readable image"),
        ("vanished.png", "no such file"),
    ]:
        assert per_image[name]["verdict"] == "ERROR" and fragment in per_image[name]["error"], name
        assert name in per_image[name]["error"]
    for name in ("deep.tif", "alpha.png", "prüfteil_测试.png"):
        assert per_image[name]["verdict"] in ("PASS", "FAIL"), (name, per_image[name]["error"])
    assert per_image["tiny.png"]["verdict"] == "ERROR" and "too small" in per_image["tiny.png"]["error"]
    # Another camera entirely (6 times the pixels): its features do not register it, so it is
    # inspected by relative position and, since the recipe holds segments against the
    # reference's, never passed unchecked.
    huge = per_image["huge.jpg"]
    assert (huge["verdict"], huge["registration"]) == ("FAIL", "relative position")
    assert "not registered" in [d["label"] for d in huge["defects"]]
    # A grey picture of a coloured part would differ from its reference wherever it has colour.
    assert per_image["gray.bmp"]["verdict"] == "ERROR" and "has no colour" in per_image["gray.bmp"]["error"]
    summary = lines[-1]["summary"]
    assert summary["inspected"] == 10 and summary["error"] == 6


def test_rerun_skips_inspected_images_and_fail_on_defect_sets_the_status(demo_line, tmp_path):
    recipe, images, _ = demo_line
    folder = tmp_path / "lot"
    for k, image in enumerate(images):
        write_image(folder / f"part{k}.png", image)
    db = tmp_path / "r.db"
    first = inspector("run", "--recipe", str(recipe), str(folder), "--db", str(db), "--fail-on-defect")
    assert first.returncode in (0, 1), first.stderr
    fails = db_rows(db, "SELECT COUNT(*) FROM inspections WHERE verdict = 'FAIL'")[0][0]
    assert first.returncode == (1 if fails else 0)
    assert "4 inspected" in first.stdout
    second = inspector("run", "--recipe", str(recipe), str(folder), "--db", str(db))
    assert second.returncode == 0 and "0 inspected" in second.stdout and "4 skipped" in second.stdout
    assert db_rows(db, "SELECT COUNT(*) FROM inspections") == [(4,)]


def test_recipe_and_database_problems_stop_before_anything_is_written(demo_line, tmp_path):
    recipe, images, _ = demo_line
    write_image(tmp_path / "p.png", images[0])
    broken = tmp_path / "broken.yaml"
    broken.write_text(recipe.read_text().replace("min_area: 40.0", "min_area: -40.0"))
    result = inspector("run", "--recipe", str(broken), str(tmp_path / "p.png"), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2 and "defects.min_area" in result.stderr and "broken.yaml" in result.stderr
    assert not (tmp_path / "x.db").exists()
    result = inspector("run", "--recipe", str(recipe), str(tmp_path / "p.png"), "--db", "/proc/nope/x.db")
    assert result.returncode == 2 and "/proc/nope" in result.stderr
    result = inspector("run", "--recipe", str(recipe), str(tmp_path / "p.png"), "--workers", "0")
    assert result.returncode == 2 and "--workers: at least 1, got 0" in result.stderr


def test_a_run_killed_mid_way_resumes_without_losing_or_repeating(demo_line, tmp_path):
    recipe, images, _ = demo_line
    folder = tmp_path / "shift"
    rng = np.random.default_rng(99)
    for k in range(40):  # distinct content: a little noise on each copy; enough that the kill lands mid-way
        noisy = np.clip(images[k % 4].astype(int) + rng.integers(-2, 3, images[0].shape), 0, 255).astype(np.uint8)
        write_image(folder / f"p{k:02d}.png", noisy)
    db = tmp_path / "r.db"
    command = [sys.executable, "-m", "inspector", "run", "--recipe", str(recipe), str(folder), "--db", str(db)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.3)
        if db.exists():
            try:
                if db_rows(db, "SELECT COUNT(*) FROM inspections")[0][0] >= 2:
                    break
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = db_rows(db, "SELECT COUNT(*) FROM inspections")[0][0]
    assert 2 <= committed < 40
    resumed = inspector("run", "--recipe", str(recipe), str(folder), "--db", str(db))
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM inspections") == [(40, 40)]


def test_a_database_locked_for_a_few_seconds_is_waited_for(demo_line, tmp_path):
    recipe, images, _ = demo_line
    write_image(tmp_path / "p.png", images[0])
    db = tmp_path / "r.db"
    assert main(["recipe", "validate", str(recipe)]) == 0
    inspector("run", "--recipe", str(recipe), str(tmp_path / "p.png"), "--db", str(db))  # creates it
    write_image(tmp_path / "q.png", images[1])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(4); c.execute('COMMIT')\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    result = inspector("run", "--recipe", str(recipe), str(tmp_path / "q.png"), "--db", str(db))
    holder.wait()
    assert result.returncode == 0, result.stderr
    assert db_rows(db, "SELECT COUNT(*) FROM inspections") == [(2,)]


def test_a_folder_without_images_is_said_to_hold_none(demo_line, tmp_path, capsys):
    recipe, _, _ = demo_line
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    assert main(["run", "--recipe", str(recipe), str(tmp_path / "empty"), "--db", str(tmp_path / "r.db")]) == 0
    captured = capsys.readouterr()
    assert "0 inspected" in captured.out and "the source held no image files" in captured.err


def test_recipe_validate_refuses_what_run_would_refuse(tmp_path, capsys):
    from dataclasses import replace

    from inspector.recipe.io import load_recipe, save_recipe
    from inspector.recipe.model import PartPrompts

    recipe = load_recipe(write_demo_recipe(tmp_path))
    # A part box on a plain corner of the background: nothing there to select.
    nowhere = save_recipe(replace(recipe, part=PartPrompts(boxes=((0.0, 0.0, 12.0, 9.0),))), tmp_path / "nowhere.yaml")
    assert main(["recipe", "validate", str(nowhere.source)]) == 2
    said = capsys.readouterr().out
    assert f"{nowhere.source}: the reference image has only 0 distinctive features on the part" in said
    (tmp_path / "parts").mkdir()
    assert main(["run", "--recipe", str(nowhere.source), str(tmp_path / "parts"), "--db", str(tmp_path / "r.db")]) == 2
    assert said.splitlines()[0] in capsys.readouterr().err  # run refuses it with the same words
