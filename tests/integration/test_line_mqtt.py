"""The station on a real MQTT broker (Debian's mosquitto on the loopback, started by the
tests): triggers, recipe switches and acknowledgements over MQTT, the retained state,
and every result delivered exactly once (by id) across broker restarts."""

from __future__ import annotations

import json

import pytest

from inspector.line.config import MqttConfig
from inspector.line.mqtt import MqttOutput
from inspector.line.outbox import Journal
from tests.line_helpers import Broker, Line, LineData, need_mosquitto, wait_for


@pytest.fixture
def broker():
    server = Broker(need_mosquitto()).start()
    yield server
    server.stop()


@pytest.fixture
def data(tmp_path):
    return LineData(tmp_path, parts=40)


@pytest.fixture
def on_broker(data, broker):
    started = []

    def start(qos: int = 1, **options):
        station = data.station(**options).start()
        output = MqttOutput(station, MqttConfig(port=broker.port, qos=qos)).start()
        started.append((station, output))
        wait_for(lambda: output.connection == "connected", what="the station to connect")
        line = Line(broker.port)
        started.append((None, line))
        wait_for(lambda: (line.state() or {}).get("state") == "ready", what="the retained ready state")
        return station, output, line

    yield start
    for station, part in reversed(started):
        if station is None:
            part.close()
        else:
            station.stop()
            part.close()
            station.store.close()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_a_trigger_over_mqtt_gets_its_result_id_and_the_result(data, on_broker, qos):
    station, output, line = on_broker(qos=qos)
    data.drop(1)
    line.send("trigger", json.dumps({"id": "plc-4711"}))
    wait_for(lambda: line.results, what="the result")
    reply = line.replies[0]
    assert reply["accepted"] and reply["trigger"] == "plc-4711"
    result = line.results[0]
    assert result["id"] == reply["result_id"] and result["id"].startswith(f"{station.runs[0]}-1-")
    assert (result["verdict"], result["trigger"], result["product"]) == ("FAIL", "plc-4711", "Label")
    assert result["defects"] >= 1 and result["image"].endswith("p00001.png")
    assert result["inspect_ms"] > 0 and result["latency_ms"] >= result["inspect_ms"] * 0.5
    wait_for(lambda: output.sent == 1 and output.waiting == 0, what="the result counted as sent")


def test_requests_over_mqtt_are_answered_and_bad_ones_refused_with_the_reason(data, on_broker):
    _station, _output, line = on_broker(require_ack=True)
    line.send("recipe", "Nonesuch")
    line.send("recipe", b"\xff\xfe".decode("latin-1"))  # valid UTF-8 of odd text: just an unknown product
    line.send("trigger", "x" * 2000)
    line.send("recipe", "Label B")
    wait_for(lambda: len(line.replies) == 4, what="four replies")
    unknown, odd, too_large, switched = line.replies
    assert not unknown["accepted"] and "Nonesuch" in unknown["reason"] and "Label B" in unknown["reason"]
    assert not odd["accepted"]
    assert not too_large["accepted"] and "too large" in too_large["reason"]
    assert switched["accepted"]
    wait_for(lambda: line.state()["product"] == "Label B" and line.state()["state"] == "ready", what="the switch")
    data.drop(0)
    line.send("trigger")
    wait_for(lambda: line.state()["state"] == "result", what="the result to await its ack")
    line.send("trigger")
    wait_for(lambda: len(line.replies) == 6, what="the refusal")
    assert not line.replies[5]["accepted"] and "awaits acknowledgement" in line.replies[5]["reason"]
    line.send("ack", line.results[0]["id"])
    wait_for(lambda: line.state()["state"] == "ready", what="ready after the ack")
    assert line.results[0]["product"] == "Label B"


def test_the_state_is_retained_for_whoever_subscribes_later(data, on_broker, broker):
    on_broker()
    late = Line(broker.port)
    try:
        wait_for(lambda: late.state(), what="the retained state")
        assert late.state()["state"] == "ready" and late.state()["products"] == ["Label", "Label B"]
    finally:
        late.close()


def _run_through_restarts(data, station, output, broker, *, parts: int, restarts: int, signal_to_send):
    """Trigger ``parts`` parts one after another, killing the broker ``restarts`` times
    while they go and starting it again three parts later (those wait in the station's
    outbox); returns the ids the station sent, in order."""
    sent = []
    station.handshake.subscribe(result=lambda r: sent.append(r.id))
    for k in range(parts):
        data.drop(k)
    kill_at = {parts * (i + 1) // (restarts + 1) for i in range(restarts)}
    for k in range(parts):
        wait_for(lambda: station.handshake.status().state == "ready", what="ready for the next part")
        assert station.trigger().accepted
        if k in kill_at:
            wait_for(lambda: output.connection == "connected", what="the station connected")
            broker.save()  # a SIGKILL loses what the broker did not save yet
            broker.kill(signal_to_send)
            wait_for(lambda: output.connection != "connected", what="the station to notice")
        if k - 3 in kill_at:
            broker.start()
    wait_for(lambda: len(sent) == parts, what="every result")
    return sent


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_every_result_arrives_exactly_once_by_id_across_broker_restarts(data, on_broker, broker, signal_name):
    import signal

    station, output, line = on_broker()
    broker.save()  # the line's session survives the broker's restarts
    sent = _run_through_restarts(
        data, station, output, broker, parts=30, restarts=3, signal_to_send=getattr(signal, signal_name)
    )
    wait_for(lambda: output.waiting == 0, timeout=20, what="the outbox to empty")
    wait_for(lambda: {r["id"] for r in line.results} == set(sent), timeout=20, what="every result at the line")
    received = [r["id"] for r in line.results]
    first_seen = list(dict.fromkeys(received))
    assert first_seen == sent  # in order, none lost
    assert len(set(received)) == len(sent)  # repeats (a result in flight at a kill) carry the same id
    assert output.dropped == 0


def test_results_a_stopped_station_could_not_send_are_sent_when_it_starts_again(data, broker, tmp_path):
    journal = tmp_path / "line-1.mqtt-outbox"
    broker.kill()  # the broker is down while the first station works
    first = data.station().start()
    output = MqttOutput(first, MqttConfig(port=broker.port, qos=1), journal=journal).start()
    sent = []
    first.handshake.subscribe(result=lambda r: sent.append(r.id))
    for k in range(3):
        data.drop(k)
        wait_for(lambda: first.handshake.status().state == "ready", what="ready")
        assert first.trigger().accepted
    wait_for(lambda: len(sent) == 3, what="three results")
    assert output.waiting == 3
    first.stop()
    output.close()  # the broker still down: nothing could be sent
    first.store.close()

    broker.start()
    line = Line(broker.port)
    second = data.station().start()
    output = MqttOutput(second, MqttConfig(port=broker.port, qos=1), journal=journal).start()
    try:
        wait_for(lambda: line.results and line.state()["state"] == "ready", what="the old results")
        data.drop(3)
        reply = second.trigger()
        wait_for(lambda: len(line.results) == 4, what="the new result")
        assert [r["id"] for r in line.results] == [*sent, reply.result_id]
        assert output.waiting == 0
    finally:
        second.stop()
        output.close()
        second.store.close()
        line.close()
    assert not Journal(journal).pending, journal.read_bytes()  # everything sent: nothing waits for the next start


def test_a_broker_that_wants_a_password_gets_the_configured_one_and_refuses_a_wrong_one(data):
    secured = Broker(need_mosquitto(), users={"station": "s3cret"}).start()
    station = data.station().start()
    outputs = []
    try:
        for password in ("wrong", "s3cret"):
            config = MqttConfig(port=secured.port, username="station", password=password, client_id=password)
            outputs.append(MqttOutput(station, config).start())
        wrong, right = outputs
        wait_for(lambda: right.connection == "connected", what="the right password to connect")
        wait_for(lambda: "refused" in wrong.connection, what="the wrong one refused")
        assert "Not authorized" in wrong.connection or "password" in wrong.connection
    finally:
        for output in outputs:
            output.close()
        station.stop()
        station.store.close()
        secured.stop()


def test_a_result_is_not_taken_as_delivered_by_an_old_acknowledgement_once_message_ids_wrap(
    data, on_broker, broker, monkeypatch
):
    import signal

    import paho.mqtt.client as paho

    def wrap_after_40(client):  # paho wraps after 65535: reach the wrap within a few parts
        with client._mid_generate_mutex:
            client._last_mid = client._last_mid % 40 + 1
            return client._last_mid

    monkeypatch.setattr(paho.Client, "_mid_generate", wrap_after_40)
    station, output, _line = on_broker()
    results = []
    station.handshake.subscribe(result=results.append)
    for k in range(14):
        data.drop(k)
    for _ in range(10):  # states, replies and results: the ids go round
        wait_for(lambda: station.handshake.status().state == "ready", what="ready for the next part")
        assert station.trigger().accepted
    wait_for(lambda: output.sent == 10 and output.waiting == 0, what="ten results taken by the broker")
    broker.process.send_signal(signal.SIGSTOP)  # the broker hangs: it acknowledges nothing now
    try:
        for _ in range(4):
            wait_for(lambda: station.handshake.status().state == "ready", what="ready for the next part")
            assert station.trigger().accepted
        wait_for(lambda: len(results) == 14 and not output._outbox, what="the four handed to the client")
        assert (output.sent, output.waiting) == (10, 4)  # none taken for delivered without the broker's word
    finally:
        broker.process.send_signal(signal.SIGCONT)
    wait_for(lambda: output.sent == 14 and output.waiting == 0, timeout=30, what="the four once the broker is back")


def test_a_retained_trigger_is_refused_when_the_broker_hands_it_over_again(data, on_broker, broker):
    import paho.mqtt.publish as publish

    station, _output, line = on_broker()
    for k in range(3):
        data.drop(k)
    # a gateway that publishes its triggers retained: the broker keeps the message
    publish.single(f"{line.base}/trigger", "plc-1", qos=1, retain=True, hostname="127.0.0.1", port=broker.port)
    wait_for(lambda: line.results, what="the triggered result")
    broker.kill()  # saves the retained trigger; the station subscribes again once it is back
    broker.start()
    wait_for(lambda: len(line.replies) >= 2, timeout=30, what="the reply to the retained trigger")
    assert line.replies[0]["accepted"]
    refused = line.replies[1]
    assert not refused["accepted"] and "retained trigger ignored" in refused["reason"]
    assert len(line.results) == 1 and station.handshake.counts["PASS"] + station.handshake.counts["FAIL"] == 1


def test_stopping_just_as_the_broker_goes_away_ends_the_connection_cleanly(data, broker, monkeypatch):
    import signal
    import threading

    failures = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    station = data.station().start()
    output = None

    def connected(connection: str) -> None:
        if connection == "connected":  # the broker dies, and the station is told to stop, at once
            broker.kill(signal.SIGKILL)
            wait_for(lambda: not output._connected, what="the connection to be lost")
            output._closing.set()

    try:
        output = MqttOutput(station, MqttConfig(port=broker.port, qos=1), on_connection=connected).start()
        wait_for(lambda: not output._threads[0].is_alive(), what="the connection's thread to end")
        output.close()
        assert not failures, [f.exc_value for f in failures]
    finally:
        station.stop()
        station.store.close()
