"""Live sources for real: a video standing in for a camera, and a hot folder."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    recipe = write_demo_recipe(root / "recipe")
    rng = np.random.default_rng(8080)
    background = demo_background()
    images = [demo_scene(rng, defective=k % 2 == 1, background=background).image for k in range(6)]
    video = root / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for image in images:
        writer.write(image)
    writer.release()
    return recipe, images, video, root


def watch(recipe: Path, drop: Path, db: Path, *options: str) -> list[str]:
    """The command line of a hot-folder run."""
    return [
        sys.executable,
        "-m",
        "inspector",
        "run",
        "--recipe",
        str(recipe),
        "--watch",
        str(drop),
        "--db",
        str(db),
        *options,
    ]


def rows(db: Path, sql: str):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def wait_for_rows(db: Path, count: int, *, timeout: float = 120) -> None:
    """Until ``count`` inspections are committed (the database may not exist yet)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if db.exists() and rows(db, "SELECT COUNT(*) FROM inspections")[0][0] >= count:
                return
        except sqlite3.OperationalError:
            pass


def test_video_frames_are_inspected_and_kept_as_images(line, tmp_path):
    recipe, _, video, _ = line
    db = tmp_path / "v.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspector",
            "run",
            "--recipe",
            str(recipe),
            "--video",
            str(video),
            "--db",
            str(db),
            "--save-frames",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = rows(db, "SELECT image_path, verdict FROM inspections ORDER BY id")
    assert len(found) == 6
    assert all(Path(path).is_file() for path, _ in found), "every row points to an image that opens"
    assert "connected" in result.stderr and "ended" in result.stderr


def test_hot_folder_inspects_dropped_files_once_and_sorts_them(line, tmp_path):
    recipe, images, _, _ = line
    drop = tmp_path / "drop"
    db = tmp_path / "h.db"
    proc = subprocess.Popen(
        watch(recipe, drop, db, "--sort", "--settle", "0.5", "--idle-timeout", "8"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The watcher makes the folder when it starts watching, after loading the model.
    deadline = time.monotonic() + 120
    while not drop.is_dir() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    for k, image in enumerate(images[:3]):
        data = cv2.imencode(".png", image)[1].tobytes()
        with open(drop / f"part{k}.png", "wb") as f:  # written slowly, in two pieces
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(0.3)
            f.write(data[len(data) // 2 :])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    found = rows(db, "SELECT image_path, verdict FROM inspections")
    assert len(found) == 3 and {v for _, v in found} <= {"PASS", "FAIL"}
    for path, verdict in found:
        assert Path(path).is_file() and Path(path).parent.name == verdict.lower()
    # Back in the folder, the same images are not inspected again by a new watcher.
    for path, _ in found:
        shutil.copy(path, drop / Path(path).name)
    again = subprocess.run(
        watch(recipe, drop, db, "--settle", "0.2", "--idle-timeout", "3"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "3 skipped" in again.stdout
    assert rows(db, "SELECT COUNT(*) FROM inspections") == [(3,)]


def test_ctrl_c_stops_a_watch_cleanly_with_everything_committed(line, tmp_path):
    import signal

    recipe, images, _, _ = line
    drop = tmp_path / "drop"
    drop.mkdir()
    db = tmp_path / "c.db"
    proc = subprocess.Popen(
        watch(recipe, drop, db, "--settle", "0.3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (nohup, &) would
        # otherwise hand the child an ignored SIGINT, and Python keeps it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    cv2.imwrite(str(drop / "one.png"), images[0])
    wait_for_rows(db, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert rows(db, "SELECT COUNT(*) FROM inspections") == [(1,)]
    assert rows(db, "SELECT status FROM runs") == [("stopped",)]
