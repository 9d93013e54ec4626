"""Talking to the line: trigger-to-result over MQTT and OPC UA on the loopback, beside the
pipeline's own time per image; and long runs counted result by result.

A real mosquitto broker (Debian's ``mosquitto``) and the station's own OPC UA server are
started on 127.0.0.1. The station takes each part as the next file of a folder
(``source.kind: trigger``), inspects it through the one inspection loop and stores it.

1. latency, real model: the embedded model on fixtured demo parts (1280x1024 is not
   needed: the tests' 640x480 scenes), ``--parts`` triggers over each protocol, one after
   another. Trigger-to-result is timed by the line's client: MQTT from publishing the
   trigger to receiving the result message; OPC UA from calling StartSingleJob to
   receiving the ResultReady event. Beside it, the result's own ``inspect_ms`` (reading
   the file and the pipeline's stages): the difference is what the line costs.
2. latency, stand-in pipeline: the same with a pipeline that judges an image without a
   network (microseconds), so the figures are the protocol's and the handshake's alone.
3. count: ``--count`` triggers over MQTT in a row (stand-in pipeline, every part a
   distinct image file, every result stored); the line's client counts results by id.
4. restarts: ``--restart-parts`` parts triggered at the station while the broker is
   killed (SIGTERM) and started again ``--restarts`` times; every result counted by id.
5. station kills: the station's process killed (SIGKILL) ``--station-kills`` times
   right after accepting a trigger, and started again; every promised result id counted.

    .venv/bin/python benchmarks/bench_line.py [--parts 30] [--count 10000] [--restarts 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("INSPECTOR_DATA_DIR", tempfile.mkdtemp(prefix="bench-line-data-"))


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(values), "p50": at(0.5), "p95": at(0.95), "max": round(ordered[-1], 2)}


def stand_in_pipeline(recipe):
    """A pipeline without a network: PASS or FAIL from the image's first pixel."""
    from inspector.engine.image import Picture
    from inspector.engine.pipeline import InspectionPipeline
    from inspector.engine.segmenter import SegmenterRuntime
    from inspector.engine.types import FAIL, PASS, InspectionResult, ModelIdentity

    class StandInSegmenter:  # never asked to segment: the pipeline judges images itself
        identity = ModelIdentity(name="stand-in", path="<bench>", sha256="5" * 64)

        def runtime(self):
            return SegmenterRuntime(backend="stand-in", device_type="cpu")

    class StandIn(InspectionPipeline):
        def decode_side(self, *, anomaly=None):
            return None

        def inspect(self, image, *, registration=None):
            t0 = time.perf_counter()
            pixels = image.pixels if isinstance(image, Picture) else image
            verdict = FAIL if int(pixels[0, 0, 0]) % 2 else PASS
            ms = (time.perf_counter() - t0) * 1e3
            size = (pixels.shape[1], pixels.shape[0])
            return InspectionResult(verdict, (), size, {"judge": ms}, self.recipe_hash, self.model)

    return StandIn(recipe, segmenter=StandInSegmenter())


class MqttLine:
    """The line's MQTT client: triggers, and results by id with their arrival times."""

    def __init__(self, port: int, station: str) -> None:
        import paho.mqtt.client as mqtt

        from inspector.line.mqtt import tcp_no_delay

        self.base = f"inspector/{station}"
        self.results: dict[str, list[tuple[float, dict]]] = {}
        self.replies: dict[str, dict] = {}
        self.arrived = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe([(f"{self.base}/result", 1), (f"{self.base}/reply", 1)])
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        tcp_no_delay(self.client)  # as the station does: no 40 ms waits for delayed ACKs
        self.client.loop_start()
        subscribed.wait(10)

    def _on_message(self, _client, _userdata, message) -> None:
        now = time.perf_counter()
        payload = json.loads(message.payload)
        with self.arrived:
            if message.topic.endswith("/result"):
                self.results.setdefault(payload["id"], []).append((now, payload))
            else:
                self.replies[payload.get("trigger") or ""] = payload
            self.arrived.notify_all()

    def trigger(self, trigger_id: str, timeout: float = 60.0) -> tuple[float, dict]:
        """Trigger one part and wait for its result: (seconds, result)."""
        t0 = time.perf_counter()
        self.client.publish(f"{self.base}/trigger", trigger_id, qos=1)
        with self.arrived:
            if not self.arrived.wait_for(lambda: trigger_id in self.replies, timeout):
                raise RuntimeError(f"no reply to trigger {trigger_id}")
            reply = self.replies.pop(trigger_id)
            if not reply["accepted"]:
                raise RuntimeError(f"trigger {trigger_id} refused: {reply['reason']}")
            result_id = reply["result_id"]
            if not self.arrived.wait_for(lambda: result_id in self.results, timeout):
                raise RuntimeError(f"no result {result_id}")
            arrived, result = self.results[result_id][0]
        return arrived - t0, result

    def ask(self, trigger_id: str, timeout: float) -> dict | None:
        """Send a trigger and wait for its reply only (None: no reply in time)."""
        self.client.publish(f"{self.base}/trigger", trigger_id, qos=1)
        with self.arrived:
            if not self.arrived.wait_for(lambda: trigger_id in self.replies, timeout):
                return None
            return self.replies.pop(trigger_id)

    def wait_result(self, result_id: str, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: result_id in self.results, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def opcua_latencies(endpoint: str, parts: int) -> list[tuple[float, float]]:
    """(trigger-to-event ms, inspect ms) for ``parts`` triggers over OPC UA."""
    from asyncua import Client

    from inspector.line.opcua import NAMESPACE

    events: asyncio.Queue = asyncio.Queue()

    class Handler:
        def event_notification(self, event) -> None:
            events.put_nowait((time.perf_counter(), event))

    measured = []
    async with Client(endpoint) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        system = await client.nodes.objects.get_child(f"{idx}:VisionSystem")
        machine = await system.get_child(f"{idx}:VisionStateMachine")
        event_type = await client.nodes.root.get_child(
            ["0:Types", "0:EventTypes", "0:BaseEventType", f"{idx}:ResultReadyEventType"]
        )
        subscription = await client.create_subscription(0, Handler())
        await subscription.subscribe_events(system, event_type)
        state = await machine.get_child(f"{idx}:State")
        for k in range(parts):
            while await state.read_value() != "ready":
                await asyncio.sleep(0.001)
            t0 = time.perf_counter()
            accepted, result_id, reason = await machine.call_method(f"{idx}:StartSingleJob", f"ua-{k}")
            if not accepted:
                raise RuntimeError(f"StartSingleJob refused: {reason}")
            while True:
                arrived, event = await asyncio.wait_for(events.get(), 60)
                if event.ResultId == result_id:
                    break
            measured.append(((arrived - t0) * 1e3, float(event.ProcessingTime)))
    return measured


def station_with(root: Path, pipeline, *, mqtt_port: int, opcua_port: int | None, name: str, on_connection=None):
    from inspector.line.config import MqttConfig, OpcUaConfig, SourceConfig, StationConfig
    from inspector.line.service import LineService

    config = StationConfig(
        recipes=root / "recipes",
        source=SourceConfig(kind="trigger", capture="folder", folder=root / "incoming", timeout=5.0),
        product="Label",
        database=f"sqlite:///{root / f'{name}.db'}",
        device="cpu",
        save_overlays=False,
        mqtt=MqttConfig(port=mqtt_port, qos=1),
        opcua=OpcUaConfig(port=opcua_port) if opcua_port else None,
    )
    service = LineService(name, config, pipeline=pipeline, on_connection=on_connection).start()
    deadline = time.monotonic() + 120
    while service.station.handshake.status().state != "ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"station not ready: {service.station.handshake.status()}")
        time.sleep(0.05)
    return service


def latency(root: Path, broker, pipeline, parts: int, label: str, fill) -> dict:
    from tests.line_helpers import free_port

    fill(2 * parts + 5)
    opcua_port = free_port()
    service = station_with(root, pipeline, mqtt_port=broker.port, opcua_port=opcua_port, name=f"lat-{label}")
    line = MqttLine(broker.port, f"lat-{label}")
    try:
        line.trigger("warm-up")  # the first image pays for lazy set-up
        mqtt = []
        for k in range(parts):
            seconds, result = line.trigger(f"mqtt-{k}")
            mqtt.append((seconds * 1e3, result["inspect_ms"]))
        ua = asyncio.run(opcua_latencies(f"opc.tcp://127.0.0.1:{opcua_port}/inspector/", parts))
    finally:
        line.close()
        service.stop()
    figures = {}
    for protocol, measured in (("mqtt", mqtt), ("opcua", ua)):
        figures[protocol] = {
            "trigger_to_result_ms": percentiles([m[0] for m in measured]),
            "inspect_ms": percentiles([m[1] for m in measured]),
            "overhead_ms": percentiles([m[0] - m[1] for m in measured]),
        }
    return figures


def count(root: Path, broker, triggers: int) -> dict:
    fill_distinct(root / "incoming", triggers)
    service = station_with(root, stand_in_pipeline, mqtt_port=broker.port, opcua_port=None, name="count")
    line = MqttLine(broker.port, "count")
    t0 = time.perf_counter()
    try:
        for k in range(triggers):
            line.trigger(f"c-{k}")
    finally:
        elapsed = time.perf_counter() - t0
        time.sleep(0.5)
        line.close()
        service.stop()
    received = sum(len(v) for v in line.results.values())
    from tests.helpers import rows

    stored = rows(root / "count.db", "SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM inspections")[0]
    return {
        "triggers": triggers,
        "distinct_results": len(line.results),
        "messages": received,
        "repeats": received - len(line.results),
        "stored_rows": stored[0],
        "stored_distinct_images": stored[1],
        "seconds": round(elapsed, 1),
        "per_second": round(triggers / elapsed, 1),
    }


def restarts(root: Path, broker, parts: int, times: int) -> dict:
    fill_distinct(root / "incoming", parts)
    connections = []
    service = station_with(
        root,
        stand_in_pipeline,
        mqtt_port=broker.port,
        opcua_port=None,
        name="restarts",
        on_connection=lambda output, text: connections.append(text),
    )
    line = MqttLine(broker.port, "restarts")
    sent = []
    service.station.handshake.subscribe(result=lambda r: sent.append(r.id))
    output = service.outputs[0]
    kill_at = {parts * (i + 1) // (times + 1) for i in range(times)}
    time.sleep(1.2)  # the broker saves the line's session
    try:
        for k in range(parts):
            while service.station.handshake.status().state != "ready":
                time.sleep(0.0005)
            service.station.trigger(f"r-{k}")
            if k in kill_at:
                while output.connection != "connected":
                    time.sleep(0.01)
                time.sleep(1.1)
                broker.kill(signal.SIGTERM)
            if k - 20 in kill_at:
                broker.start()
        deadline = time.monotonic() + 60
        while (output.waiting or len(line.results) < len(sent)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        line.close()
        service.stop()
    order = [rid for rid, _ in sorted(((rid, v[0][0]) for rid, v in line.results.items()), key=lambda x: x[1])]
    received = sum(len(v) for v in line.results.values())
    return {
        "parts": parts,
        "broker_restarts": times,
        "station_reconnected": connections.count("connected") - 1,
        "sent": len(sent),
        "distinct_received": len(line.results),
        "lost": len(set(sent) - set(line.results)),
        "repeats_dropped_by_id": received - len(line.results),
        "in_order": order == [rid for rid in sent if rid in line.results],
        "dropped_by_full_outbox": output.dropped,
    }


def station_kills(root: Path, broker, parts: int, times: int) -> dict:
    """The station's own process killed (SIGKILL) ``times`` times while the line triggers
    ``parts`` parts over MQTT, each time right after a trigger was accepted (the part is
    being taken or inspected), and started again. Every result id a trigger was promised
    must arrive exactly once: the part's result, or the ERROR result a restarted station
    sends for a part it never finished."""
    import subprocess

    fill_distinct(root / "incoming", parts + 10 * times)
    name = "killed"
    line = MqttLine(broker.port, name)
    command = [sys.executable, __file__, "--child", str(root), str(broker.port), name]

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    child = start()
    promised: list[str] = []
    kill_at = {parts * (i + 1) // (times + 1) for i in range(times)}
    unanswered = 0  # triggers sent while the station was down or starting: no reply, or refused
    t0 = time.perf_counter()
    try:
        k = 0
        while len(promised) < parts:
            reply = line.ask(f"k-{k}", timeout=2.0)
            k += 1
            if reply is None or not reply["accepted"]:
                unanswered += 1
                time.sleep(0.05)
                continue
            promised.append(reply["result_id"])
            if len(promised) - 1 in kill_at:
                child.kill()  # the part is being taken or inspected
                child.wait()
                child = start()
                continue
            line.wait_result(reply["result_id"], timeout=30)
        deadline = time.monotonic() + 60
        while set(promised) - set(line.results) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        line.close()
    received = sum(len(v) for v in line.results.values())
    broken = [
        rid for rid in promised if rid in line.results and "stopped before" in (line.results[rid][0][1]["error"] or "")
    ]
    return {
        "parts_promised": len(promised),
        "station_kills": times,
        "promised_and_received": len(set(promised) & set(line.results)),
        "lost": len(set(promised) - set(line.results)),
        "repeats_dropped_by_id": received - len(line.results),
        "answered_after_restart_as_error": len(broken),
        "triggers_unanswered_while_down": unanswered,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def child(root: str, port: str, name: str) -> None:
    """A station process for ``station_kills``: stand-in pipeline, runs until killed."""
    service = station_with(Path(root), stand_in_pipeline, mqtt_port=int(port), opcua_port=None, name=name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    service.stop()


def fill_distinct(folder: Path, parts: int) -> None:
    """``parts`` distinct small images (their first pixel decides PASS or FAIL)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    image = np.zeros((48, 64, 3), np.uint8)
    for k in range(parts):
        image[0, 0, 0] = k % 256
        image[1, :4, 0] = np.frombuffer(k.to_bytes(4, "big"), np.uint8)  # distinct content
        cv2.imwrite(str(folder / f"{k:06d}.png"), image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=30, help="triggers per protocol for the latencies")
    parser.add_argument("--count", type=int, default=10_000, help="MQTT triggers in a row, counted")
    parser.add_argument("--restarts", type=int, default=10, help="broker restarts during the restart run")
    parser.add_argument("--restart-parts", type=int, default=3000, help="parts in the restart run")
    parser.add_argument("--station-kills", type=int, default=10, help="station processes killed during a run")
    parser.add_argument("--kill-parts", type=int, default=1000, help="parts in the station-kill run")
    parser.add_argument("--skip-model", action="store_true", help="no latency run on the real model")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "PORT", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="write the figures as JSON here too")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from tests.line_helpers import Broker, LineData, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        sys.exit("bench_line: the mosquitto broker is not installed (apt-get install mosquitto)")
    root = Path(tempfile.mkdtemp(prefix="bench-line-"))
    data = LineData(root, parts=2 * args.parts + 5)
    broker = Broker(binary).start()
    figures: dict = {"machine": f"{os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d")}
    try:

        def fill_scenes(n: int) -> None:
            for k in range(n):
                data.drop(k)

        if not args.skip_model:
            from inspector.engine.pipeline import open_pipeline

            figures["latency_real_model"] = latency(
                root, broker, lambda r: open_pipeline(r, device="cpu"), args.parts, "model", fill_scenes
            )
            print(json.dumps({"latency_real_model": figures["latency_real_model"]}), flush=True)
        figures["latency_stand_in"] = latency(root, broker, stand_in_pipeline, max(args.parts, 200), "stand-in",
                                              lambda n: fill_distinct(root / "incoming", n))  # fmt: skip
        print(json.dumps({"latency_stand_in": figures["latency_stand_in"]}), flush=True)
        if args.count:
            figures["count"] = count(root, broker, args.count)
            print(json.dumps({"count": figures["count"]}), flush=True)
        if args.restarts:
            figures["restarts"] = restarts(root, broker, args.restart_parts, args.restarts)
            print(json.dumps({"restarts": figures["restarts"]}), flush=True)
        if args.station_kills:
            figures["station_kills"] = station_kills(root, broker, args.kill_parts, args.station_kills)
            print(json.dumps({"station_kills": figures["station_kills"]}), flush=True)
    finally:
        broker.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
