"""The station on the plant's MQTT broker (paho-mqtt 2.x).

Topics, under ``inspector/<station>/``:

- ``result``: each result as JSON (``LineResult``), in order, at the configured QoS.
- ``state``: the station's state as JSON, retained; the broker's last will sets it to
  ``offline`` when the station goes away without saying so.
- ``trigger`` (subscribed): inspect the next part; the payload is empty, the trigger's
  id as text, or ``{"id": "..."}``. A retained trigger (or ack) is refused: the broker
  would hand it over again on every reconnection.
- ``recipe`` (subscribed): switch to the product named by the payload (text, or
  ``{"product": "..."}``).
- ``ack`` (subscribed): acknowledge a result (its id, or empty for the one waiting).
- ``reply``: the answer to each request: accepted (a trigger's with its result id) or
  refused with the reason.

None lost, none twice: results wait in order in the station's outbox while the broker
cannot be reached, and each leaves it only once the broker has it (its PUBACK at QoS 1
and 2; written to the socket at QoS 0). The outbox is kept in a journal on disk too: a
station stopped or killed before it could send everything sends the rest first when it
starts again. A result in flight when the connection dropped
is sent again on the next connection, under the same id; a consumer drops a repeat by
that id. Each connection is a new client, so only the outbox decides what is sent, and
in what order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from inspector.line.config import ConfigError, MqttConfig, topic_name_problem
from inspector.line.messages import LineResult, Reply, Status, error_result
from inspector.line.outbox import Journal
from inspector.line.station import Station

log = logging.getLogger(__name__)

WINDOW = 100  # results handed to the client and not yet acknowledged by the broker
MAX_PAYLOAD = 1024  # a request's payload; a trigger id or a product name is far shorter
BACKOFF = (0.2, 5.0)  # first and longest wait between attempts to reach the broker


def tcp_no_delay(client: mqtt.Client) -> None:
    """Small messages leave at once: with Nagle's algorithm on (paho leaves it on) a reply
    written after an acknowledgement waits for the broker's delayed ACK, 40 ms a hop."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):  # a TLS or WebSocket wrapper: left as it is
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def _field(payload: bytes, key: str) -> tuple[str | None, str | None]:
    """The value of a request: the payload's text, or ``key`` of a JSON object; and
    what is wrong with the payload, if anything."""
    if len(payload) > MAX_PAYLOAD:
        return None, f"payload of {len(payload)} bytes is too large ({MAX_PAYLOAD} at most)"
    text = _text(payload)
    if text is None:
        return None, "payload is not UTF-8 text"
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None, "payload is not valid JSON"
        value = data.get(key) if isinstance(data, dict) else None
        if value is not None and not isinstance(value, str):
            return None, f"{key} must be text, got {value!r:.40}"
        return value, None
    return text or None, None


class MqttOutput:
    """Sends the station's results and state to a broker and takes its requests.

    Args:
        station: the running station.
        config: broker, QoS, credentials, outbox size.
        journal: where results not yet sent are kept across restarts (see
            ``outbox.py``); None: in memory only.
        on_connection: told the connection's state ("connected", "cannot reach ...").
    """

    def __init__(
        self,
        station: Station,
        config: MqttConfig,
        *,
        journal: Path | None = None,
        on_connection: Callable[[str], None] | None = None,
    ) -> None:
        problem = topic_name_problem(station.name)
        if problem:
            raise ConfigError(f"station name: {problem}")
        self.station, self.config = station, config
        self.on_connection = on_connection
        base = f"inspector/{station.name}"
        self.topics = {k: f"{base}/{k}" for k in ("result", "state", "trigger", "recipe", "ack", "reply")}
        self.connection = "connecting"
        self.sent = 0  # results the broker has taken
        self.dropped = 0  # results dropped because the outbox was full
        self._journal = Journal(journal) if journal is not None else None
        # what a station stopped or killed before had not sent goes first
        self._outbox: deque[tuple[str, bytes]] = deque(self._journal.pending.items() if self._journal else ())
        self._inflight: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        # Acknowledgements that came while a result was being handed to the client, before
        # its id was known here (the broker quicker than this thread): only the result
        # being handed can be among them. Any other id the station does not wait for (a
        # state's, a reply's) is ignored, so an id paho uses again after 65535 cannot
        # take an old acknowledgement for a new result's.
        self._handing = False
        self._early: set[int] = set()
        self._control: deque[tuple[str, bytes, bool]] = deque()  # replies and state
        self._cond = threading.Condition()
        self._connected = False
        self._refused = False  # the broker answered the last attempt with a refusal
        self._closing = threading.Event()
        self._requests: queue.Queue = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name="inspector-mqtt", daemon=True),
            threading.Thread(target=self._serve_requests, name="inspector-mqtt-requests", daemon=True),
        ]
        if self._journal is not None:
            self._keep_broken_promises()
        station.handshake.subscribe(result=self._enqueue, status=self._state_changed, promised=self._promised)

    # -- what the station hands over -----------------------------------------------------

    def _enqueue(self, result: LineResult) -> None:
        with self._cond:
            if len(self._outbox) >= self.config.buffer:
                lost, _ = self._outbox.popleft()
                self.dropped += 1
                self._delivered(lost)
                log.warning("MQTT outbox full (%d results): result %s dropped", self.config.buffer, lost)
            payload = result.to_json().encode()
            self._outbox.append((result.id, payload))
            if self._journal is not None:
                self._journal.add(result.id, payload)
            self._cond.notify_all()

    def _promised(self, result_id: str, trigger: str | None) -> None:
        if self._journal is not None:
            with self._cond:
                self._journal.promise(result_id, trigger)

    def _keep_broken_promises(self) -> None:
        """Triggers accepted before the station was killed, whose parts were never
        finished: each gets its ERROR result, after what was waiting from before."""
        for result_id, trigger in self._journal.broken:
            result = error_result(
                self.station.name,
                result_id,
                "the station stopped before this part's result was out (found when it started again)",
                trigger=trigger,
            )
            payload = result.to_json().encode()
            self._journal.add(result_id, payload)
            self._outbox.append((result_id, payload))

    def _delivered(self, result_id: str) -> None:
        """The broker has it (or it was dropped): not sent again (the caller holds ``_cond``)."""
        if self._journal is not None:
            self._journal.done(result_id)

    def _state_changed(self, status: Status) -> None:
        self._send_control(self.topics["state"], status.to_json().encode(), retain=True)

    def _send_control(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        with self._cond:
            if retain:  # only the newest state matters
                self._control = deque(c for c in self._control if c[0] != topic)
            self._control.append((topic, payload, retain))
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """Results not yet taken by the broker."""
        with self._cond:
            return len(self._outbox) + len(self._inflight)

    # -- the connection --------------------------------------------------------------------

    def start(self) -> MqttOutput:
        for thread in self._threads:
            thread.start()
        return self

    def _tell(self, connection: str) -> None:
        if connection != self.connection:
            self.connection = connection
            if self.on_connection:
                self.on_connection(connection)

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id or f"inspector-{self.station.name}",
            clean_session=True,
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        offline = Status(self.station.name, "offline", "connection lost", None, (), None)
        client.will_set(self.topics["state"], offline.to_json(), qos=self.config.qos, retain=True)
        client.max_inflight_messages_set(WINDOW)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _run(self) -> None:
        wait = BACKOFF[0]
        where = f"{self.config.host}:{self.config.port}"
        while not self._closing.is_set():
            client = self._client()
            try:
                client.connect(self.config.host, self.config.port, keepalive=self.config.keepalive)
            except (OSError, ValueError) as exc:
                self._tell(f"cannot reach the broker at {where}: {getattr(exc, 'strerror', None) or exc}")
                self._closing.wait(wait)
                wait = min(wait * 2, BACKOFF[1])
                continue
            tcp_no_delay(client)
            client.loop_start()
            with self._cond:
                self._refused = False
                self._cond.wait_for(lambda: self._connected or self._refused or self._closing.is_set(), timeout=10)
                connected = self._connected
            if connected:
                wait = BACKOFF[0]
                self._tell("connected")
                self._send(client)
            if self._closing.is_set():
                self._flush(client)
            client.disconnect()
            client.loop_stop()
            with self._cond:
                self._connected = False
                # what the broker did not acknowledge goes again, first, in order, under its id
                self._outbox.extendleft(reversed(self._inflight.values()))
                self._inflight.clear()
            if self._closing.is_set():
                break
            if connected:
                self._tell(f"broker at {where} lost; reconnecting")
            elif not self._refused:
                self._tell(f"the broker at {where} did not answer the connection")
            self._closing.wait(wait)
            wait = BACKOFF[0] if connected else min(wait * 2, BACKOFF[1])

    def _send(self, client: mqtt.Client) -> None:
        """Hand state, replies and results to the client while it is connected."""
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        not self._connected
                        or self._closing.is_set()
                        or self._control
                        or (self._outbox and len(self._inflight) < WINDOW)
                    ),
                    timeout=1.0,
                )
                if not self._connected or self._closing.is_set():
                    return
                control, self._control = list(self._control), deque()
                results = self._next_results()
            for topic, payload, retain in control:
                client.publish(topic, payload, qos=self.config.qos, retain=retain)
            self._hand(client, results)

    def _next_results(self) -> list[tuple[str, bytes]]:
        """The results to hand over now (the caller holds ``_cond``)."""
        room = max(0, WINDOW - len(self._inflight))
        return [self._outbox.popleft() for _ in range(min(len(self._outbox), room))]

    def _hand(self, client: mqtt.Client, results: list[tuple[str, bytes]]) -> None:
        # Not under ``_cond``: paho calls ``_on_publish`` holding its own lock, which
        # ``publish`` takes too, so holding ``_cond`` here could deadlock the two threads.
        for item in results:
            with self._cond:
                self._handing, self._early = True, set()
            info = client.publish(self.topics["result"], item[1], qos=self.config.qos)
            with self._cond:
                early, self._handing, self._early = self._early, False, set()
                if info.mid in early:  # the broker was quicker than this thread
                    self.sent += 1
                    self._delivered(item[0])
                else:
                    self._inflight[info.mid] = item

    def _flush(self, client: mqtt.Client, timeout: float = 5.0) -> None:
        """On stop: the last state and every waiting result, for up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._connected or not (self._outbox or self._inflight):
                    break
                results = self._next_results()
            self._hand(client, results)
            time.sleep(0.01)
        last = self.station.handshake.status()
        info = client.publish(self.topics["state"], last.to_json(), qos=self.config.qos, retain=True)
        # the connection gone meanwhile: the last will says "offline" instead; the
        # connection is still closed, and what was in flight kept for the next start
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(1)

    # -- paho's callbacks (its network thread) ----------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._tell(f"the broker refused the connection: {reason_code}")
            client.disconnect()  # not connected: _run tries again
            with self._cond:
                self._refused = True
                self._cond.notify_all()
            return
        qos = self.config.qos
        client.subscribe([(self.topics[k], qos) for k in ("trigger", "recipe", "ack")])
        with self._cond:
            self._connected = True
            # the retained state is the station's, not the last will's
            self._control.appendleft((self.topics["state"], self.station.handshake.status().to_json().encode(), True))
            self._cond.notify_all()

    def _on_disconnect(self, client, _userdata, _flags, _reason_code, _properties) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()
        client.disconnect()  # no reconnecting this client: the next connection is a new one

    def _on_publish(self, _client, _userdata, mid, _reason_code, _properties) -> None:
        with self._cond:
            item = self._inflight.pop(mid, None)
            if item is not None:
                self.sent += 1
                self._delivered(item[0])
            elif self._handing:
                self._early.add(mid)
            self._cond.notify_all()

    def _on_message(self, _client, _userdata, message) -> None:
        self._requests.put((message.topic, bytes(message.payload), bool(message.retain)))

    # -- requests from the line ----------------------------------------------------------

    def _serve_requests(self) -> None:
        while True:
            item = self._requests.get()
            if item is None:
                return
            try:
                reply = self._answer(*item)
            except Exception as exc:  # a bug must not stop the station taking requests
                log.exception("request on %s failed", item[0])
                reply = Reply(False, item[0].rsplit("/", 1)[-1], f"internal error: {exc!r}")
            self._send_control(self.topics["reply"], json.dumps(reply.to_dict()).encode())

    def _answer(self, topic: str, payload: bytes, retained: bool = False) -> Reply:
        # A retained request is one the broker keeps and hands over on every (re)subscribe:
        # taken as a trigger it would inspect a part each time the connection comes back.
        if retained and topic == self.topics["trigger"]:
            return Reply(False, "trigger", "retained trigger ignored (publish triggers without the retain flag)")
        if retained and topic == self.topics["ack"]:
            return Reply(False, "ack", "retained acknowledgement ignored (publish it without the retain flag)")
        if topic == self.topics["trigger"]:
            value, problem = _field(payload, "id")
            return Reply(False, "trigger", problem) if problem else self.station.trigger(value)
        if topic == self.topics["recipe"]:
            value, problem = _field(payload, "product")
            if problem or not value:
                return Reply(False, "recipe", problem or "name a product")
            return self.station.select(value)
        value, problem = _field(payload, "id")
        return Reply(False, "ack", problem) if problem else self.station.acknowledge(value)

    def close(self) -> None:
        """Send the last state and what still waits (a few seconds at most), then leave."""
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._requests.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        if self._journal is not None:
            with self._cond:
                self._journal.close()
