"""``inspector serve``: the configuration checked field by field, and a real station (the
real command, the real embedded model, a real broker) triggered and switched over MQTT,
stopped cleanly by SIGTERM and, killed, marked offline by its last will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.cli import main
from tests.helpers import rows
from tests.line_helpers import Broker, Line, LineData, need_mosquitto, wait_for

REPO = Path(__file__).resolve().parents[2]


def _serve(tmp_path, text: str, capsys) -> tuple[int, str]:
    config = tmp_path / "station.yaml"
    config.write_text(text)
    status = main(["serve", "--station", "line-1", "--config", str(config)])
    return status, capsys.readouterr().err


def test_a_bad_configuration_is_refused_naming_every_bad_field(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_PASSWORD", raising=False)
    status, err = _serve(
        tmp_path,
        """
recipes: recipes
colour: blue
source: {kind: trigger, timeout: -1}
handshake: {timeout: .nan}
mqtt: {port: 99999, qos: 3, password: secret}
opcua: {host: 0.0.0.0}
""",
        capsys,
    )
    assert status == 2
    for named in (
        "colour: unknown key",
        "source.folder: missing (required for a folder capture)",
        "source.timeout: must be >= 0.01",
        "handshake.timeout: must be a finite number",
        "mqtt.port: must be <= 65535",
        "mqtt.qos: must be <= 2",
        "mqtt.password: never in the file",
        "opcua: anonymous access is off",
    ):
        assert named in err, named


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("recipes: [unclosed", "not valid YAML (line 1"),
        ("- just\n- a list\n", "must be a mapping of settings"),
        ("recipes: r\nsource: {kind: watch, folder: f}\nversion: 7\n", "version: this Inspector reads version 1"),
        ("a: &a [1]\nb: " + "[*a, " * 30 + "1" + "]" * 30 + "\n", "unknown key"),
    ],
)
def test_a_configuration_that_is_not_one_is_said_not_a_traceback(tmp_path, capsys, text, said):
    status, err = _serve(tmp_path, text, capsys)
    assert status == 2 and said in err and "Traceback" not in err


def test_a_huge_configuration_file_is_not_read(tmp_path, capsys):
    status, err = _serve(tmp_path, "# " + "x" * 100_000, capsys)
    assert status == 2 and "too large" in err


def test_a_missing_recipes_folder_is_said_before_the_station_starts(tmp_path, capsys):
    status, err = _serve(tmp_path, "recipes: nowhere\nsource: {kind: trigger, folder: in}\n", capsys)
    assert status == 2 and "nowhere: no such recipes folder" in err


@pytest.fixture
def broker():
    server = Broker(need_mosquitto()).start()
    yield server
    server.stop()


def _station(tmp_path: Path, port: int) -> tuple[LineData, Path]:
    data = LineData(tmp_path, parts=3)
    config = tmp_path / "station.yaml"
    config.write_text(
        f"""
version: 1
recipes: recipes
product: Label
database: results.db
device: cpu
source: {{kind: trigger, capture: folder, folder: incoming, timeout: 2}}
handshake: {{timeout: 120}}
mqtt: {{host: 127.0.0.1, port: {port}, qos: 1}}
"""
    )
    return data, config


def _start(config: Path, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "INSPECTOR_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "inspector", "serve", "--station", "line-1", "--config", str(config), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.model
def test_a_station_on_the_real_model_is_triggered_switched_and_stopped_over_mqtt(tmp_path, broker):
    data, config = _station(tmp_path, broker.port)
    data.drop(0)
    data.drop(1)
    process = _start(config, tmp_path)
    line = Line(broker.port)
    try:
        wait_for(lambda: (line.state() or {}).get("state") == "ready", timeout=120, what="the station ready")
        line.send("trigger", "part-1")
        wait_for(lambda: line.results, timeout=60, what="the first result")
        line.send("recipe", "Label B")
        wait_for(lambda: line.state()["product"] == "Label B" and line.state()["state"] == "ready", timeout=60)
        line.send("trigger", "part-2")
        wait_for(lambda: len(line.results) == 2, timeout=60, what="the second result")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        line.close()
    assert process.returncode == 0, err
    first, second = line.results
    assert (first["trigger"], first["product"], second["trigger"], second["product"]) == (
        "part-1",
        "Label",
        "part-2",
        "Label B",
    )
    assert {first["verdict"], second["verdict"]} <= {"PASS", "FAIL"}, (first, second)
    assert line.state()["state"] == "offline" and line.state()["reason"] == "stopped"
    printed = [json.loads(line_) for line_ in out.splitlines()]
    assert [p["result"]["id"] for p in printed if "result" in p] == [first["id"], second["id"]]
    stored = rows(tmp_path / "results.db", "SELECT product, verdict FROM inspections ORDER BY id")
    assert stored == [("Label", first["verdict"]), ("Label B", second["verdict"])]


def test_a_station_that_dies_is_marked_offline_by_its_last_will(tmp_path, broker):
    _data, config = _station(tmp_path, broker.port)
    config.write_text(config.read_text().replace("product: Label", "product: Nonesuch"))  # no model load needed
    process = _start(config, tmp_path)
    line = Line(broker.port)
    try:
        wait_for(lambda: (line.state() or {}).get("state") == "error", timeout=60, what="the station's state")
        assert "Nonesuch" in line.state()["reason"]
        time.sleep(0.2)
        process.kill()
        process.wait(timeout=10)
        wait_for(lambda: line.state()["state"] == "offline", timeout=10, what="the last will")
        assert line.state()["reason"] == "connection lost"
    finally:
        if process.poll() is None:
            process.kill()
        line.close()


def test_a_station_name_that_cannot_be_an_mqtt_topic_is_refused_before_anything_starts(tmp_path, capsys):
    (tmp_path / "recipes").mkdir()
    config = tmp_path / "station.yaml"
    config.write_text("recipes: recipes\nsource: {kind: trigger, folder: in}\nmqtt: {port: 1883}\n")
    status = main(["serve", "--station", "line/3", "--config", str(config)])
    captured = capsys.readouterr()
    assert status == 2 and "'line/3' cannot be part of an MQTT topic" in captured.err
    assert captured.out == ""  # no state printed: the station never started


@pytest.mark.model
def test_a_part_accepted_by_a_station_that_is_killed_gets_its_error_result_when_it_starts_again(tmp_path, broker):
    _data, config = _station(tmp_path, broker.port)
    config.write_text(config.read_text().replace("timeout: 2}", "timeout: 60}"))  # the part waits for its picture
    line = Line(broker.port)
    process = _start(config, tmp_path)
    try:
        wait_for(lambda: (line.state() or {}).get("state") == "ready", timeout=120, what="the station ready")
        line.send("trigger", "part-1")
        wait_for(lambda: line.replies, timeout=10, what="the reply")
        promised = line.replies[0]["result_id"]
        wait_for(lambda: line.state()["state"] == "busy", what="busy with the part")
        process.kill()  # while the part waits for its picture
        process.wait(timeout=10)
        assert not line.results
        process = _start(config, tmp_path)
        wait_for(lambda: line.results, timeout=120, what="the promised result")
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        line.close()
    (result,) = line.results
    assert (result["id"], result["verdict"], result["trigger"]) == (promised, "ERROR", "part-1")
    assert "stopped before" in result["error"]
