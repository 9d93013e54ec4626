"""A station on test data: fixtured demo parts, two products, the stand-in segmenter, and
real brokers and servers started on the loopback by the tests themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from inspector.engine.image import write_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.line.recipes import RecipeShelf
from inspector.line.station import Station
from inspector.line.triggered import FolderCapture, TriggeredSource
from inspector.recipe.io import save_recipe
from inspector.services.inspection_loop import RunSettings
from inspector.store.database import open_store
from tests.helpers import TruthSegmenter, fixtured, fixtured_recipe


class LineData:
    """Recipes for products "Label" and "Label B", and parts to drop into a folder."""

    def __init__(self, root: Path, parts: int = 6) -> None:
        self.root = root
        self.recipes = root / "recipes"
        self.recipes.mkdir()
        recipe, reference = fixtured_recipe(self.recipes)
        save_recipe(replace(recipe, name="Label B", source=None), self.recipes / "label_b.yaml")
        self.scenes = [fixtured(10 + k, defective=k % 2 == 1) for k in range(parts)]
        self.all_scenes = [reference, *self.scenes]
        self.incoming = root / "incoming"
        self.incoming.mkdir()
        self.database_file = root / "results.db"
        self.database = f"sqlite:///{self.database_file}"

    def drop(self, k: int, name: str | None = None) -> Path:
        """Part ``k`` written into the incoming folder (as a camera would)."""
        path = self.incoming / (name or f"p{k:05d}.png")
        write_image(path, self.scenes[k % len(self.scenes)].image)
        return path

    def pipeline(self, recipe) -> InspectionPipeline:
        return InspectionPipeline(recipe, segmenter=TruthSegmenter(self.all_scenes))

    def station(self, name: str = "line-1", *, timeout: float = 30.0, require_ack: bool = False, capture_timeout=2.0):
        store = open_store(self.database)
        source = TriggeredSource(FolderCapture(self.incoming), timeout=capture_timeout)
        station = Station(
            name,
            shelf=RecipeShelf(self.recipes),
            source=source,
            store=store,
            open_pipeline=self.pipeline,
            product="Label",
            settings=RunSettings(station=name, save_overlays=False),
            require_ack=require_ack,
            timeout=timeout,
        )
        return station


def wait_for(condition, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def need_mosquitto() -> str:
    binary = mosquitto_binary()
    if binary is None:
        message = "the mosquitto MQTT broker is not installed: apt-get install mosquitto"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Broker:
    """A real mosquitto on 127.0.0.1 and a free port, with persistence in a temporary
    folder, so that a restart keeps the sessions and messages a real plant's would."""

    def __init__(self, binary: str, *, users: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="inspector-mqtt-"))
        self.port = free_port()
        self.config = self.root / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if users:
            passwords = self.root / "passwords"
            for k, (user, password) in enumerate(users.items()):
                subprocess.run(
                    [shutil.which("mosquitto_passwd") or str(Path(binary).with_name("mosquitto_passwd")),
                     *(["-c"] if k == 0 else []), "-b",
                     str(passwords), user, password],
                    check=True, capture_output=True,
                )  # fmt: skip
            os.chmod(passwords, 0o644)
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{access}"
            "set_tcp_nodelay true\n"  # else small messages wait for the previous one's ACK (Nagle): ~40 ms each hop
            "persistence true\n"
            f"persistence_location {self.root}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            f"log_dest file {self.root}/mosquitto.log\n"
        )
        if os.geteuid() == 0:  # mosquitto drops root for its own user, which must reach the folder
            os.chmod(self.root, 0o777)
            self.config.write_text(self.config.read_text() + "user root\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start: {self.process.stderr.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port in 10 s")

    def save(self) -> None:
        """Have the broker write its sessions and messages to disk now (SIGUSR1), and wait
        until it has: a SIGKILL after this loses nothing that came before."""
        database = self.root / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else 0
        self.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: database.exists() and database.stat().st_mtime_ns != before, what="the broker to save")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class Collector:
    """What a subscriber receives, by result id, in order."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def add(self, result_id: str) -> None:
        with self.lock:
            self.ids.append(result_id)

    def distinct(self) -> set[str]:
        with self.lock:
            return set(self.ids)


class Line:
    """The line's side: a client that triggers, switches and listens, as a PLC's gateway
    or a plant's data layer would. A persistent session, so that the broker keeps what
    arrives while it is away."""

    def __init__(self, port: int, station: str = "line-1") -> None:
        self.base = f"inspector/{station}"
        self.results: list[dict] = []
        self.states: list[dict] = []
        self.replies: list[dict] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"line-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the line's client did not subscribe"

    def _on_connect(self, client, _userdata, _flags, _reason, _properties) -> None:
        client.subscribe([(f"{self.base}/{k}", 1) for k in ("result", "state", "reply")])

    def _on_message(self, _client, _userdata, message) -> None:
        payload = json.loads(message.payload)
        kind = message.topic.rsplit("/", 1)[-1]
        with self.lock:
            {"result": self.results, "state": self.states, "reply": self.replies}[kind].append(payload)

    def send(self, what: str, payload: str = "") -> None:
        self.client.publish(f"{self.base}/{what}", payload, qos=1).wait_for_publish(5)

    def state(self) -> dict | None:
        with self.lock:
            return self.states[-1] if self.states else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
