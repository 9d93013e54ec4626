"""Operate runs a line station's configuration as ``inspector serve`` does: a hot folder,
the stand-in segmenter, and a real mosquitto on the loopback started by the test."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.dialogs import answer_file_dialog
from tests.line_helpers import Broker, Line, LineData, need_mosquitto


@pytest.fixture
def broker():
    server = Broker(need_mosquitto()).start()
    yield server
    server.stop()


def _configure(tmp_path, text: str):
    config = tmp_path / "station.yaml"
    config.write_text(text)
    return config


def _choose_station(qtbot, window, config) -> None:
    """Station…, its file typed into the file dialog; the station named line-1."""
    operate = window.operate
    station = operate.job.station_edit
    station.setFocus()
    qtbot.keyClick(station, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(station, "line-1")
    seen: list = []
    answer_file_dialog(qtbot, window, seen, str(config))
    qtbot.mouseClick(operate.station_run.button, Qt.MouseButton.LeftButton)
    assert seen and operate.station_run.panel.isVisible() and not operate.source_edit.isEnabled()
    window.activateWindow()  # back in the window once the dialog is gone
    qtbot.waitUntil(window.isActiveWindow, timeout=60_000)


def test_a_station_runs_in_operate_and_shows_its_broker_connection(window, qtbot, tmp_path, broker, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    data = LineData(tmp_path, parts=2)
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: data.pipeline(recipe))
    config = _configure(
        tmp_path,
        f"""
version: 1
recipes: recipes
product: Label
database: results.db
source: {{kind: watch, folder: incoming, settle: 0.1}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, qos: 1, username: op, password_env: NO_PASSWORD_HERE}}
""",
    )
    monkeypatch.setenv("NO_PASSWORD_HERE", "s3cret")
    line = Line(broker.port)
    operate = window.operate
    panel = operate.station_run.panel
    try:
        _choose_station(qtbot, window, config)
        qtbot.keyClick(operate.job.station_edit, Qt.Key.Key_F5)
        assert operate.running and operate.start_button.text() == "Stop", window.status.text()
        connected = f"MQTT broker: connected\n127.0.0.1:{broker.port}"
        qtbot.waitUntil(lambda: panel.connection_text("mqtt") == connected, timeout=60_000)
        qtbot.waitUntil(lambda: panel.state_label.text().startswith("Ready"), timeout=60_000)
        assert operate.verdict.text() == "READY" and "product Label" in panel.state_label.text()

        data.drop(0)  # a good part
        qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "1", timeout=60_000)
        assert operate.verdict.text() == "PASS" and operate.view.image_size is not None
        data.drop(1)  # a part with a stain
        qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "2", timeout=60_000)
        assert operate.verdict.text() == "FAIL" and operate.rejects.reject_count() == 1
        assert operate.current.text().startswith("p00001.png")
        qtbot.waitUntil(lambda: len(line.results) == 2, timeout=60_000)  # the line heard both
        assert [r["verdict"] for r in line.results] == ["PASS", "FAIL"]

        broker.kill()  # the broker goes away
        qtbot.waitUntil(lambda: "reconnecting" in panel.connection_text("mqtt"), timeout=60_000)
        assert panel.connection_text("mqtt").startswith(f"MQTT broker: reconnecting\n127.0.0.1:{broker.port} (")
        assert "s3cret" not in panel.connection_text("mqtt")

        qtbot.keyClick(operate.view, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
        assert operate.verdict.text() == "OFFLINE" and operate.start_button.text() == "Start"
        assert "Station stopped; runs 1; 2 inspected" in window.status.text()
    finally:
        line.close()


def test_a_bad_station_configuration_is_refused_naming_the_field(window, qtbot, tmp_path, monkeypatch):
    data = LineData(tmp_path, parts=1)
    config = _configure(
        tmp_path,
        f"recipes: {data.recipes}\nsource: {{kind: watch, folder: incoming}}\nmqtt: {{port: 99999}}\n",
    )
    operate = window.operate
    _choose_station(qtbot, window, config)
    with qtbot.waitSignal(operate.message, timeout=60_000, check_params_cb=lambda text, error: error):
        qtbot.keyClick(operate.job.station_edit, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert "mqtt.port: must be <= 65535" in window.status.text()
    assert "mqtt.port" in operate.station_run.panel.state_label.text()

    # Back to inspection only: the source is the operator's again.
    qtbot.mouseClick(operate.station_run.panel.clear_button, Qt.MouseButton.LeftButton)
    assert not operate.station_run.panel.isVisible() and operate.source_edit.isEnabled()
    assert operate.station_run.file is None


def test_a_broker_that_refuses_the_station_is_said_without_the_password(window, qtbot, tmp_path, monkeypatch):
    server = Broker(need_mosquitto(), users={"op": "the-right-one"}).start()
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STATION_PASSWORD", "a-wrong-one")
    data = LineData(tmp_path, parts=1)
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: data.pipeline(recipe))
    config = _configure(
        tmp_path,
        f"recipes: recipes\ndatabase: results.db\nsource: {{kind: watch, folder: incoming, settle: 0.1}}\n"
        f"mqtt: {{port: {server.port}, username: op, password_env: STATION_PASSWORD}}\n",
    )
    operate = window.operate
    panel = operate.station_run.panel
    try:
        _choose_station(qtbot, window, config)
        qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: ": refused" in panel.connection_text("mqtt"), timeout=60_000)
        assert panel.connection_text("mqtt").startswith(f"MQTT broker: refused\n127.0.0.1:{server.port} (")
        assert "a-wrong-one" not in panel.connection_text("mqtt")
        qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    finally:
        server.stop()


def test_a_station_in_error_says_why_in_the_tile_and_is_offline_once_stopped(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    data = LineData(tmp_path, parts=1)
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: data.pipeline(recipe))
    config = _configure(
        tmp_path, "recipes: recipes\nproduct: Nope\ndatabase: results.db\nsource: {kind: trigger, folder: incoming}\n"
    )
    operate = window.operate
    _choose_station(qtbot, window, config)
    qtbot.keyClick(operate.job.station_edit, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: operate.verdict.text() == "ERROR", timeout=60_000)
    assert operate.current.text().startswith("product Nope")
    assert operate.station_run.panel.state_label.text().startswith("Error\nproduct Nope")
    qtbot.keyClick(operate.job.station_edit, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.verdict.text() == "OFFLINE"
