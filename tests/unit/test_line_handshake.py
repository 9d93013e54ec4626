"""The handshake with the line, without any protocol: trigger -> busy -> result -> ack,
refusals with reasons, timeouts as ERROR results, recipe switches, every result stored."""

from __future__ import annotations

import threading

import pytest

from inspector.line.messages import LineResult, Status
from inspector.line.recipes import RecipeShelf
from inspector.line.station import Station
from inspector.line.triggered import Relay
from inspector.services.inspection_loop import RunSettings
from inspector.sources.hotfolder import HotFolderSource
from inspector.store.database import open_store
from tests.helpers import rows
from tests.line_helpers import LineData, wait_for


@pytest.fixture
def data(tmp_path):
    return LineData(tmp_path)


class Heard:
    def __init__(self, station: Station) -> None:
        self.results: list[LineResult] = []
        self.states: list[Status] = []
        station.handshake.subscribe(result=self.results.append, status=self.states.append)

    def state(self) -> str:
        return self.states[-1].state


@pytest.fixture
def running(data):
    stations = []

    def start(**options) -> tuple[Station, Heard]:
        station = data.station(**options)
        heard = Heard(station)
        station.start()
        stations.append(station)
        wait_for(lambda: heard.state() == "ready", what="the station to be ready")
        return station, heard

    yield start
    for station in stations:
        station.stop()
        station.store.close()


def test_each_trigger_takes_the_next_file_and_its_result_is_sent_and_stored(data, running):
    station, heard = running()
    for k in range(3):
        data.drop(k)
    ids = []
    for count in range(1, 4):
        reply = station.trigger(f"plc-{count}")
        assert reply.accepted, reply.reason
        ids.append(reply.result_id)
        wait_for(lambda count=count: len(heard.results) == count, what="the result")
    run = station.runs[0]
    assert [i.rsplit("-", 1)[0] for i in ids] == [f"{run}-1", f"{run}-2", f"{run}-3"]
    assert len({i.rsplit("-", 1)[1] for i in ids}) == 1  # the run's token
    assert [r.id for r in heard.results] == ids
    assert [r.verdict for r in heard.results] == ["PASS", "FAIL", "PASS"]
    assert heard.results[1].defects >= 1 and heard.results[1].trigger == "plc-2"
    assert heard.results[0].image.endswith("p00000.png") and heard.results[0].product == "Label"
    station.stop()
    stored = rows(data.database, "SELECT image_path, verdict FROM inspections ORDER BY id")
    assert [(name.rsplit("/", 1)[-1], verdict) for name, verdict in stored] == [
        ("p00000.png", "PASS"),
        ("p00001.png", "FAIL"),
        ("p00002.png", "PASS"),
    ]


def test_a_trigger_while_busy_is_refused_with_the_reason_not_queued(data, running, monkeypatch):
    station, heard = running()
    data.drop(0)
    hold = threading.Event()
    pipeline = station._pipelines["Label"][1]
    inspect = pipeline.inspect
    monkeypatch.setattr(pipeline, "inspect", lambda *a, **k: (hold.wait(10), inspect(*a, **k))[1])
    first = station.trigger()
    second = station.trigger()
    assert first.accepted and not second.accepted
    assert second.reason == f"busy: inspecting for result {first.result_id}"
    assert heard.state() == "busy"
    hold.set()
    wait_for(lambda: heard.results, what="the first result")
    wait_for(lambda: heard.state() == "ready", what="ready again")
    assert len(heard.results) == 1  # the refused trigger took no part
    assert station.handshake.counts["refused"] == 1


def test_a_result_awaits_its_acknowledgement_before_the_next_trigger(data, running):
    station, heard = running(require_ack=True)
    data.drop(0)
    data.drop(1)
    first = station.trigger()
    wait_for(lambda: heard.state() == "result", what="the result to wait for its ack")
    refused = station.trigger()
    assert not refused.accepted and refused.reason == f"result {first.result_id} awaits acknowledgement"
    wrong = station.acknowledge("999-9")
    assert not wrong.accepted and first.result_id in wrong.reason
    assert station.acknowledge(first.result_id).accepted
    assert heard.state() == "ready"
    assert station.trigger().accepted


def test_no_image_to_take_is_an_error_result_not_a_hang(data, running):
    station, heard = running(capture_timeout=0.2)
    reply = station.trigger()
    wait_for(lambda: heard.results, what="the ERROR result")
    result = heard.results[0]
    assert (result.id, result.verdict) == (reply.result_id, "ERROR")
    assert "no image waiting" in result.error
    wait_for(lambda: heard.state() == "ready", what="ready again")
    station.stop()
    assert rows(data.database, "SELECT verdict FROM inspections") == [("ERROR",)]


def test_an_inspection_past_the_timeout_is_an_error_result_and_its_late_result_is_not_sent(data, running, monkeypatch):
    station, heard = running(timeout=0.3)
    data.drop(0)
    data.drop(1)
    hold = threading.Event()
    pipeline = station._pipelines["Label"][1]
    inspect = pipeline.inspect
    monkeypatch.setattr(pipeline, "inspect", lambda *a, **k: (hold.wait(10), inspect(*a, **k))[1])
    reply = station.trigger()
    wait_for(lambda: heard.results, what="the timeout's ERROR result")
    assert (heard.results[0].id, heard.results[0].verdict) == (reply.result_id, "ERROR")
    assert "no result within 0.3 s" in heard.results[0].error
    refused = station.trigger()
    assert not refused.accepted and "timed out" in refused.reason  # never taken for the next part's
    hold.set()
    wait_for(lambda: heard.state() == "ready", what="ready once the late inspection is done")
    assert len(heard.results) == 1
    monkeypatch.setattr(pipeline, "inspect", inspect)
    nxt = station.trigger()
    wait_for(lambda: len(heard.results) == 2, what="the next result")
    assert heard.results[1].id == nxt.result_id and heard.results[1].verdict == "FAIL"
    station.stop()
    assert len(rows(data.database, "SELECT id FROM inspections")) == 2  # the late one is stored


def test_switching_products_runs_the_other_recipe_and_refuses_unknown_ones(data, running):
    station, heard = running()
    assert heard.states[-1].products == ("Label", "Label B")
    unknown = station.select("Nonesuch")
    assert not unknown.accepted and "Nonesuch" in unknown.reason and "Label B" in unknown.reason
    assert heard.state() == "ready" and heard.states[-1].product == "Label"
    assert station.select("Label B").accepted
    wait_for(lambda: heard.state() == "ready" and heard.states[-1].product == "Label B", what="the switch")
    data.drop(0)
    reply = station.trigger()
    wait_for(lambda: heard.results, what="the result")
    assert heard.results[0].product == "Label B"
    assert reply.result_id.startswith(f"{station.runs[-1]}-1-") and len(station.runs) == 2
    station.stop()
    assert rows(data.database, "SELECT product FROM inspections") == [("Label B",)]


def test_a_hot_folder_station_sends_what_comes_and_refuses_triggers(data):
    store = open_store(data.database)
    station = Station(
        "line-2",
        shelf=RecipeShelf(data.recipes),
        source=Relay(HotFolderSource(data.incoming, poll=0.05, settle=0.05)),
        store=store,
        open_pipeline=data.pipeline,
        settings=RunSettings(station="line-2", save_overlays=False),
    )
    heard = Heard(station)
    station.start()
    try:
        wait_for(lambda: heard.state() == "ready", what="ready")
        refused = station.trigger()
        assert not refused.accepted and "does not take triggers" in refused.reason
        data.drop(0)
        data.drop(1)
        wait_for(lambda: len(heard.results) == 2, what="two results")
        assert station.select("Label B").accepted  # the folder goes on being watched
        wait_for(lambda: heard.states[-1].product == "Label B" and heard.state() == "ready", what="the switch")
        data.drop(2)
        wait_for(lambda: len(heard.results) == 3, what="the third result")
        assert [r.product for r in heard.results] == ["Label", "Label", "Label B"]
        assert heard.results[2].id.startswith(f"{station.runs[-1]}-1-")
    finally:
        station.stop()
        store.close()


def test_the_same_picture_taken_twice_is_an_error_result_not_a_hang(data, running):
    station, heard = running(timeout=20)
    data.drop(0, "a.png")
    data.drop(0, "b.png")  # the same part's picture under another name
    station.trigger()
    wait_for(lambda: heard.results, what="the first result")
    second = station.trigger()
    wait_for(lambda: len(heard.results) == 2, timeout=5, what="the second result")
    assert (heard.results[1].id, heard.results[1].verdict) == (second.result_id, "ERROR")
    assert "inspected before" in heard.results[1].error
    wait_for(lambda: heard.state() == "ready", what="ready again")


def test_sorted_files_move_once_their_results_are_stored(data):
    from inspector.line.triggered import FolderCapture, TriggeredSource

    store = open_store(data.database)
    station = Station(
        "line-3",
        shelf=RecipeShelf(data.recipes),
        source=TriggeredSource(FolderCapture(data.incoming, sort=True), timeout=1.0),
        store=store,
        open_pipeline=data.pipeline,
        settings=RunSettings(station="line-3", save_overlays=False),
    )
    heard = Heard(station)
    station.start()
    try:
        wait_for(lambda: heard.state() == "ready", what="ready")
        data.drop(0)
        data.drop(1)
        for count in (1, 2):
            assert station.trigger().accepted
            wait_for(lambda count=count: len(heard.results) == count, what="the result")
    finally:
        station.stop()
        store.close()
    assert (data.incoming / "pass" / "p00000.png").exists() and (data.incoming / "fail" / "p00001.png").exists()
    assert sorted(p.name for p in data.incoming.glob("*.png")) == []


def test_a_camera_that_cannot_be_opened_gives_error_results_saying_so_not_a_hang(tmp_path):
    from inspector.line.triggered import CameraCapture, TriggeredSource
    from inspector.sources import CameraSource

    camera = CameraSource(str(tmp_path / "gone.mp4"), live=True, trigger="software", backoff=(0.05, 0.1))
    source = TriggeredSource(CameraCapture(camera), timeout=0.3)
    frames = source.frames()
    try:
        source.fire("1-1")
        frame = next(frames)
    finally:
        source.stop()
    assert frame.error is not None and "within 0.3 s" in frame.error
    assert "reconnecting" in frame.error or "no frame" in frame.error


def test_a_timed_out_part_whose_picture_is_then_skipped_frees_the_station(data, running, monkeypatch):
    station, heard = running(timeout=60)  # the first part has all the time it needs
    data.drop(0, "a.png")
    data.drop(0, "b.png")  # the same picture again
    station.trigger()
    wait_for(lambda: heard.results, what="the first result")
    assert heard.results[0].verdict == "PASS"
    station.handshake.timeout = 0.3
    capture = station.source.capture
    take = capture.take
    monkeypatch.setattr(capture, "take", lambda tag, timeout: (threading.Event().wait(0.6), take(tag, timeout))[1])
    second = station.trigger()
    wait_for(lambda: len(heard.results) == 2, what="the timeout's ERROR result")
    assert (heard.results[1].id, heard.results[1].verdict) == (second.result_id, "ERROR")
    wait_for(lambda: heard.state() == "ready", timeout=5, what="ready once the skipped picture came")
    assert len(heard.results) == 2


def test_a_part_accepted_but_not_taken_when_the_station_stops_gets_an_error_result(data, running, monkeypatch):
    station, heard = running()
    monkeypatch.setattr(station.handshake, "fire", lambda result_id: None)  # stopped before the part was taken
    reply = station.trigger()
    station.stop()
    assert [(r.id, r.verdict) for r in heard.results] == [(reply.result_id, "ERROR")]
    assert "stopped before this part was inspected" in heard.results[0].error
    assert heard.state() == "offline"


def test_selecting_the_product_in_use_goes_on_unless_its_recipe_file_changed(data, running):
    from dataclasses import replace

    from inspector.recipe.io import load_recipe, save_recipe

    station, heard = running()
    assert station.select("Label").accepted
    threading.Event().wait(0.5)  # time for a new run to start, were one started
    assert heard.state() == "ready" and len(station.runs) == 1  # the same run goes on
    recipe_file = data.recipes / "label.yaml"
    recipe = load_recipe(recipe_file)
    save_recipe(replace(recipe, defects=replace(recipe.defects, min_area=60), source=None), recipe_file)
    assert station.select("Label").accepted  # edited: read again, a new run
    wait_for(lambda: len(station.runs) == 2 and heard.state() == "ready", what="the new run")


def test_a_run_that_fails_while_a_part_is_inspected_answers_it_and_takes_triggers_again(data, running, monkeypatch):
    from inspector.errors import StoreError
    from inspector.line import station as station_module
    from inspector.services import inspection_loop

    monkeypatch.setattr(station_module, "RETRY_S", 0.3)
    station, heard = running(timeout=60)  # a timeout must not be what answers the part
    data.drop(0)
    data.drop(1)
    submit = inspection_loop.ResultWriter.submit
    calls = []

    def locked_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("database is locked")
        return submit(self, *args, **kwargs)

    monkeypatch.setattr(inspection_loop.ResultWriter, "submit", locked_once)
    first = station.trigger("a")
    wait_for(lambda: heard.results, what="the failed part's ERROR result")
    assert (heard.results[0].id, heard.results[0].verdict) == (first.result_id, "ERROR")
    assert "database is locked" in heard.results[0].error
    wait_for(lambda: heard.state() == "ready", what="ready once the run started again")
    second = station.trigger("b")
    assert second.accepted, second.reason
    wait_for(lambda: len(heard.results) == 2, what="the next part's result")
    assert (heard.results[1].id, heard.results[1].trigger) == (second.result_id, "b")
    assert heard.results[1].verdict in ("PASS", "FAIL")


def test_a_trigger_id_sent_again_gets_its_part_s_result_id_and_takes_no_part(data, running):
    station, heard = running()
    data.drop(0)
    data.drop(1)
    first = station.trigger("plc-7")
    wait_for(lambda: heard.results, what="the result")
    again = station.trigger("plc-7")  # a gateway that sent the same trigger twice
    assert again.accepted and again.result_id == first.result_id
    assert heard.state() == "ready" and len(heard.results) == 1
    other = station.trigger("plc-8")
    assert other.accepted and other.result_id.startswith(f"{station.runs[0]}-2-")
    wait_for(lambda: len(heard.results) == 2, what="the next part's result")
    assert heard.results[1].image.endswith("p00001.png")


def test_an_acknowledgement_does_not_make_a_station_in_error_ready(data, running):
    station, heard = running(require_ack=True)
    data.drop(0)
    data.drop(1)
    first = station.trigger()
    wait_for(lambda: heard.state() == "result", what="the result to await its ack")
    station.handshake.error("the camera is gone")
    assert station.acknowledge(first.result_id).accepted
    assert (heard.state(), heard.states[-1].reason) == ("error", "the camera is gone")
    refused = station.trigger()
    assert not refused.accepted and "camera is gone" in refused.reason


def test_an_acknowledged_timeout_leaves_the_station_busy_until_its_part_is_finished(data, running, monkeypatch):
    station, heard = running(require_ack=True, timeout=0.3)
    data.drop(0)
    data.drop(1)
    hold = threading.Event()
    pipeline = station._pipelines["Label"][1]
    inspect = pipeline.inspect
    monkeypatch.setattr(pipeline, "inspect", lambda *a, **k: (hold.wait(10), inspect(*a, **k))[1])
    first = station.trigger()
    wait_for(lambda: heard.results, what="the timeout's ERROR result")
    assert station.acknowledge(first.result_id).accepted
    assert heard.state() == "busy" and "timed out" in heard.states[-1].reason  # not "ready": triggers are refused
    assert not station.trigger().accepted
    hold.set()
    wait_for(lambda: heard.state() == "ready", what="ready once the late inspection is done")
    assert station.trigger().accepted


def test_a_switch_that_fails_after_the_part_in_hand_was_answered_leaves_the_station_ready():
    from inspector.line.handshake import Handshake

    handshake = Handshake("s", fire=lambda result_id: None, timeout=30)
    try:
        handshake.run_started(1, "Label")
        assert handshake.trigger("a").accepted
        assert handshake.begin_switch("switching to Label B") is not None  # a part is in hand: refused
        handshake.switching("switching to Label B")  # (a switch asked for before the trigger came)
        handshake.abandon("no picture")  # the part in hand is answered meanwhile
        handshake.switching(None)  # the recipe could not be opened
        assert handshake.status().state == "ready"
        assert handshake.trigger("b").accepted
    finally:
        handshake.close()


def test_result_ids_are_not_used_again_by_a_results_database_started_anew(data):
    ids = []
    for _ in range(2):
        station = data.station()
        heard = Heard(station)
        station.start()
        try:
            wait_for(lambda heard=heard: heard.state() == "ready", what="the station to be ready")
            data.drop(len(ids))
            reply = station.trigger()
            wait_for(lambda heard=heard: heard.results, what="the result")
            ids.append((station.runs[0], reply.result_id))
        finally:
            station.stop()
            station.store.close()
        data.database_file.unlink()  # the results database started anew: its runs count from 1 again
    (first_run, first), (second_run, second) = ids
    assert first_run == second_run and first != second
