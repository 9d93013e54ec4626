"""Operate with a stand-in segmenter: what is refused before a run, and what the pane shows."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from datetime import datetime

import cv2
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from inspector.gui.widgets.operate import OperateWorkspace
from inspector.store.database import open_store
from tests.gui.dialogs import answer_question
from tests.unit.test_store_and_loop import line  # noqa: F401  (fixture)


@pytest.fixture
def operate(qtbot, line, monkeypatch):  # noqa: F811
    """Operate on the ``line`` fixture's recipe, its network the stand-in."""
    pipeline, _, tmp = line
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: pipeline)
    workspace = OperateWorkspace(lambda: open_store(str(tmp / "r.db")))
    qtbot.addWidget(workspace)
    workspace.resize(1200, 800)
    workspace.show()
    qtbot.waitExposed(workspace)
    qtbot.keyClicks(workspace.recipe_edit, str(pipeline.recipe.source))
    qtbot.keyClick(workspace.recipe_edit, Qt.Key.Key_Return)  # the job
    yield workspace
    workspace.shutdown()


def _said(workspace, qtbot, action) -> list[tuple[str, bool]]:
    messages = []
    workspace.message.connect(lambda text, error: messages.append((text, error)))
    action()
    return messages


def test_a_mistyped_source_is_refused_before_a_run_is_stored(operate, qtbot, line):  # noqa: F811
    _, folder, tmp = line
    typo = f"{folder}s"
    qtbot.keyClicks(operate.source_edit, typo)
    said = _said(operate, qtbot, lambda: qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton))
    assert not operate.running and operate.start_button.text() == "Start"
    assert said == [(f"{typo}: no such file or folder", True)]
    assert not (tmp / "r.db").exists()  # no run, no ERROR row


def test_an_error_never_shows_the_last_part_under_its_verdict(operate, qtbot, line):  # noqa: F811
    _, folder, tmp = line
    lot = tmp / "lot"
    lot.mkdir()
    (lot / "a.png").write_bytes((folder / "p0.png").read_bytes())  # a good part, inspected first
    (lot / "b.png").write_text("not an image")  # then one that cannot be read
    qtbot.keyClicks(operate.source_edit, str(lot))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.counters["Inspected"].text() == "2" and operate.verdict.text() == "ERROR"
    assert operate.view.image_size is None  # not a.png's picture under b.png's verdict
    assert operate.current.text().startswith("b.png")
    with sqlite3.connect(tmp / "r.db") as conn:
        assert sorted(conn.execute("SELECT verdict FROM inspections")) == [("ERROR",), ("PASS",)]

    # The next run starts from an empty pane, not the last run's verdict and picture.
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    assert operate.verdict.text() == "READY" and operate.view.image_size is None
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)


def test_f5_starts_and_stops_a_run_from_anywhere_in_the_window(window, qtbot, line, monkeypatch):  # noqa: F811
    pipeline, folder, tmp = line
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: pipeline)
    operate, history = window.operate, window.history
    qtbot.keyClicks(operate.recipe_edit, str(pipeline.recipe.source))
    incoming = tmp / "incoming"
    incoming.mkdir()
    qtbot.keyClicks(operate.source_edit, f"watch:{incoming}")  # a hot folder: runs until stopped
    window.tabs.setCurrentWidget(history)
    history.table.setFocus()
    qtbot.keyClick(history.table, Qt.Key.Key_F5)  # from the History tab, the focus on its table
    assert operate.running and window.tabs.currentWidget() is operate
    (incoming / "p1.png").write_bytes((folder / "p1.png").read_bytes())
    qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "1", timeout=60_000)
    qtbot.keyClick(operate.source_edit, Qt.Key.Key_F5)  # from a text field: F5 is not typed into it
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.source_edit.text() == f"watch:{incoming}" and "stopped" in window.status.text()


class _Camera:
    """Stands in for cv2.VideoCapture: delivers ``frame`` while ``plugged`` is set."""

    plugged = threading.Event()
    frame = None

    def __init__(self, target) -> None:
        self.open = self.plugged.is_set()

    def isOpened(self) -> bool:
        return self.open

    def read(self):
        time.sleep(0.02)  # a camera's frame period, not a wait of the test
        if not self.plugged.is_set():
            return False, None
        return True, self.frame.copy()

    def set(self, prop, value) -> bool:
        return True

    def get(self, prop) -> float:
        return 0.0

    def release(self) -> None:
        pass


def test_the_tile_says_when_no_camera_delivers(operate, qtbot, line, monkeypatch):  # noqa: F811
    _, folder, _ = line
    monkeypatch.setattr("inspector.sources.camera.cv2.VideoCapture", _Camera)
    monkeypatch.setattr(_Camera, "plugged", threading.Event())
    monkeypatch.setattr(_Camera, "frame", cv2.imread(str(folder / "p0.png")))
    qtbot.keyClicks(operate.source_edit, "camera:0")
    qtbot.mouseClick(operate.trigger_mode, Qt.MouseButton.LeftButton)  # one part per trigger
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    assert operate.verdict.text() == "CONNECTING"
    qtbot.waitUntil(lambda: operate.verdict.text() == "NO CAMERA", timeout=30_000)  # never READY
    assert "camera:0: reconnecting" in operate.current.text()

    _Camera.plugged.set()
    qtbot.waitUntil(lambda: operate.verdict.text() == "READY", timeout=60_000)
    qtbot.keyClick(operate.view, Qt.Key.Key_T)  # trigger
    qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "1", timeout=60_000)
    assert operate.verdict.text() == "PASS"

    _Camera.plugged.clear()  # the cable is pulled
    qtbot.waitUntil(lambda: operate.verdict.text() == "RECONNECTING", timeout=30_000)
    assert operate.view.image_size is None  # not the last part under RECONNECTING
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)


def test_runs_are_grouped_in_the_strip_and_counted_for_the_shift(operate, qtbot, line, tmp_path, monkeypatch):  # noqa: F811
    _, folder, _ = line
    data = tmp_path / "data"
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(data))
    qtbot.keyClicks(operate.source_edit, str(folder))
    station = operate.job.station_edit
    station.setFocus()
    qtbot.keyClick(station, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(station, Qt.Key.Key_Delete)
    said = _said(operate, qtbot, lambda: qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton))
    assert said == [("A station name is 1 to 200 printable characters.", True)] and not operate.running
    qtbot.keyClicks(station, "Line 3")

    def run() -> list[tuple[str, bool]]:
        said = []
        operate.message.connect(lambda text, error: said.append((text, error)))
        qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
        return said

    run()
    assert operate.counters["Inspected"].text() == "6" and operate.shift_counters["Inspected"].text() == "6"
    assert [h.split("\n")[0] for h in operate.rejects.group_headers()] == ["Run 1"]

    # The same parts again are skipped, and the way to inspect them again is said.
    said = run()
    assert operate.counters["Skipped"].text() == "6" and operate.counters["Inspected"].text() == "0"
    assert "tick Inspect again" in said[-1][0]
    assert operate.current.text().startswith("All 6 images were inspected before")
    qtbot.mouseClick(operate.inspect_again, Qt.MouseButton.LeftButton)
    run()
    assert operate.counters["Inspected"].text() == "6" and operate.shift_counters["Inspected"].text() == "12"
    assert operate.shift_counters["Fail"].text() == "6" and operate.shift_counters["Yield"].text() == "50.0 %"
    headers = operate.rejects.group_headers()
    assert [h.split("\n")[0] for h in headers] == ["Run 3", "Run 1"]  # newest first; run 2 had no rejects
    assert operate.rejects.reject_count() == 6
    first = operate.rejects.item(1)  # the newest reject, under its run's heading
    qtbot.mouseClick(
        operate.rejects.viewport(), Qt.MouseButton.LeftButton, pos=operate.rejects.visualItemRect(first).center()
    )
    assert operate.verdict.text() == "FAIL" and "from the rejects strip" in operate.current.text()

    # A new shift: asked, recorded, counted from zero; declined, nothing changes.
    seen: list[str] = []
    answer_question(qtbot, operate, QMessageBox.StandardButton.No, seen)
    qtbot.mouseClick(operate.tally.reset_button, Qt.MouseButton.LeftButton)
    assert operate.shift_counters["Inspected"].text() == "12" and not (data / "shifts.jsonl").exists()
    answer_question(qtbot, operate, QMessageBox.StandardButton.Yes, seen)
    qtbot.mouseClick(operate.tally.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: operate.shift_counters["Inspected"].text() == "0", timeout=30_000)
    assert "12 inspected, 6 fail" in seen[1]
    (line_,) = (data / "shifts.jsonl").read_text().splitlines()
    record = json.loads(line_)
    assert record["counts"] == {"inspected": 12, "pass": 6, "fail": 6, "error": 0}
    assert record["station"] == "Line 3" and datetime.fromisoformat(record["time"]).tzinfo is not None
    assert datetime.fromisoformat(record["shift_started"]) <= datetime.fromisoformat(record["time"])
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT DISTINCT station FROM runs").fetchall() == [("Line 3",)]
    assert operate.counters["Inspected"].text() == "6"  # the run's counters are the run's


def test_a_shift_record_that_cannot_be_written_keeps_the_counts(operate, qtbot, line, tmp_path, monkeypatch):  # noqa: F811
    _, folder, _ = line
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(blocked))
    qtbot.keyClicks(operate.source_edit, str(folder))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    said = []
    operate.message.connect(lambda text, error: said.append((text, error)))
    answer_question(qtbot, operate, QMessageBox.StandardButton.Yes, [])
    qtbot.mouseClick(operate.tally.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: said != [] and operate.tally.reset_button.isEnabled(), timeout=30_000)
    assert said[0][1] and said[0][0].startswith("The shift was not reset: ")
    assert operate.shift_counters["Inspected"].text() == "6"


def test_stop_takes_effect_within_one_image(operate, qtbot, line):  # noqa: F811
    """The second part is held in the network until Stop is pressed: it is finished and
    stored, and no part after it is begun."""
    pipeline, folder, _ = line
    segmenter = pipeline.segmenter
    held = hashlib.sha256(cv2.imread(str(folder / "p1.png")).tobytes()).hexdigest()
    entered, release = threading.Event(), threading.Event()
    segment = segmenter.segment

    def holding(image, **settings):
        if hashlib.sha256(image.tobytes()).hexdigest() == held:
            entered.set()
            release.wait(120)
        return segment(image, **settings)

    segmenter.segment = holding
    qtbot.keyClicks(operate.source_edit, str(folder))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: entered.is_set() and operate.counters["Inspected"].text() == "1", timeout=60_000)
    said = _said(operate, qtbot, lambda: qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton))
    release.set()
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.counters["Inspected"].text() == "2"
    assert said[-1][0].startswith("Run 1 stopped: 2 inspected")


def test_the_shift_outlasts_the_window(window, qtbot, line, monkeypatch, tmp_path):  # noqa: F811
    from PySide6.QtCore import QSettings

    from inspector.gui.main_window import MainWindow

    pipeline, folder, _ = line
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: pipeline)
    operate = window.operate
    qtbot.keyClicks(operate.recipe_edit, str(pipeline.recipe.source))
    qtbot.keyClicks(operate.source_edit, str(folder))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    since = operate.tally.shift_since.text()
    window.close()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    again = MainWindow(db_url=str(tmp_path / "results.db"), settings=settings)
    qtbot.addWidget(again)
    assert again.operate.shift_counters["Inspected"].text() == "6" and again.operate.counters["Inspected"].text() == "0"
    assert again.operate.tally.shift_since.text() == since
    again.close()
