"""The handshake with the line's controller, whatever protocol carries it.

trigger -> busy -> result -> acknowledge:

- A trigger is accepted only when the station is ready: it gets a result id at once
  (run id, sequence and the run's random token: ``"12-7-3fa9c2d8"``), and the station is
  busy until that result is out.
  A trigger while busy (or in error, or while a result waits for its acknowledgement) is
  refused with the reason; nothing is queued silently. A trigger id accepted before is
  the same part asked for again: it gets that part's result id, and nothing is taken.
- The result goes to every output with the id the trigger was given. Where the station
  asks for acknowledgements, it stays on the result until the controller acknowledges
  that id; otherwise it is ready again at once.
- A result that does not come within the timeout is an ERROR result for that id, sent
  like any other. The inspection still running is finished and stored; the station says
  so and refuses triggers until it is done, so a late result is never taken for the next
  part's.

Results the station inspects without a trigger (a hot folder, a free-running camera)
take the next id of the run the same way. The id is stable: an output that sends a
result twice (a broker that went down mid-send) sends the same id, for the consumer to
drop the repeat.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from inspector.engine.types import ERROR, InspectionResult
from inspector.line.messages import LineResult, Reply, State, Status, error_result, utc_now

log = logging.getLogger(__name__)

REMEMBERED_TRIGGERS = 1000  # trigger ids kept to answer a repeat with its result id


@dataclass
class _Pending:
    result_id: str
    sequence: int
    trigger: str | None
    started: float  # time.monotonic()
    timed_out: bool = False


class Handshake:
    """The station's side of the handshake; thread-safe, protocol-free.

    Args:
        station: the station's name.
        fire: takes one part (called with the accepted trigger's result id; the source
            then yields its frame).
        require_ack: stay on each triggered result until it is acknowledged.
        timeout: seconds from a trigger to its result before it is an ERROR result.
        on_result: told each result (outputs), on the inspecting or watchdog thread.
        on_status: told each change of state.
    """

    def __init__(
        self,
        station: str,
        *,
        fire: Callable[[str], None] | None = None,
        require_ack: bool = False,
        timeout: float = 30.0,
        on_result: Callable[[LineResult], None] | None = None,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        self.station = station
        self.fire, self.require_ack, self.timeout = fire, require_ack, timeout
        self._listeners_result = [on_result] if on_result else []
        self._listeners_status = [on_status] if on_status else []
        self._listeners_promised: list[Callable[[str, str | None], None]] = []
        self._lock = threading.RLock()
        self._state: State = "starting"
        self._reason: str | None = None
        self._product: str | None = None
        self._products: tuple[str, ...] = ()
        self._run: int | None = None
        self._sequence = 0
        self._token = ""
        self._pending: _Pending | None = None
        self._unacknowledged: str | None = None
        self._switching: str | None = None
        self._before_switch: tuple[State, str | None] = ("starting", None)
        self._last: LineResult | None = None
        self._accepted: OrderedDict[str, str] = OrderedDict()  # the latest triggers' ids -> result ids
        self.counts: Counter = Counter()
        self._closed = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="inspector-handshake-watchdog", daemon=True)
        self._watchdog.start()

    # -- listeners -----------------------------------------------------------------------

    def subscribe(
        self,
        *,
        result: Callable[[LineResult], None] | None = None,
        status: Callable[[Status], None] | None = None,
        promised: Callable[[str, str | None], None] | None = None,
    ) -> None:
        """Hear of each result, each change of state (told the current one at once), and
        each result id promised to an accepted trigger (``promised(result_id, trigger)``,
        before the part is taken: an output can keep the promise across a crash)."""
        if promised:
            self._listeners_promised.append(promised)
        if result:
            self._listeners_result.append(result)
        if status:
            self._listeners_status.append(status)
            status(self.status())

    def status(self) -> Status:
        with self._lock:
            return Status(
                self.station,
                self._state,
                self._reason,
                self._product,
                self._products,
                self._last.id if self._last else None,
                dict(self.counts),
            )

    @property
    def last_result(self) -> LineResult | None:
        return self._last

    def _tell_status(self) -> None:
        status = self.status()
        for listener in list(self._listeners_status):
            try:
                listener(status)
            except Exception:  # an output's failure must not stop the line
                log.exception("an output could not take the station's state")

    def _tell_result(self, result: LineResult) -> None:
        for listener in list(self._listeners_result):
            try:
                listener(result)
            except Exception:
                log.exception("an output could not take result %s", result.id)

    def _set(self, state: State, reason: str | None = None) -> None:
        with self._lock:
            changed = (state, reason) != (self._state, self._reason)
            self._state, self._reason = state, reason
        if changed:
            self._tell_status()

    # -- the station's side ----------------------------------------------------------------

    def run_started(self, run_id: int, product: str) -> None:
        """A run of ``product``'s recipe started: results are numbered anew under its id."""
        with self._lock:
            self._run, self._sequence, self._product = run_id, 0, product
            self._token = uuid.uuid4().hex[:8]
            self._switching = None
            busy_finishing = self._pending is not None
        if not busy_finishing:
            self._set("ready")

    def set_products(self, products: tuple[str, ...]) -> None:
        with self._lock:
            self._products = tuple(products)
        self._tell_status()

    def switching(self, reason: str | None) -> None:
        """Busy switching recipes (``reason`` says to what); None: the switch did not
        happen, and the station says what it is now (a switch that happens ends in
        :meth:`run_started`)."""
        with self._lock:
            if reason is not None:
                self._mark_switch(reason)
            elif self._switching is None:  # a run started meanwhile: nothing to undo
                return
            else:
                self._switching = None
                if self._state == "busy":  # still saying it switches: what is it now?
                    before = self._before_switch
                    # not ready before (no recipe yet, in error): a failed switch changed nothing
                    keep = before[0] in ("starting", "error", "offline")
                    self._state, self._reason = before if keep else ("ready", None)
                    self._state, self._reason = self._after_result()
        self._tell_status()

    def begin_switch(self, reason: str) -> str | None:
        """Busy switching recipes, unless a part is inspected or a result awaits its
        acknowledgement: then why not (checked and set in one step, so that no trigger
        is accepted in between)."""
        with self._lock:
            refusal = self._switch_refusal()
            if refusal is None:
                self._mark_switch(reason)
        if refusal is None:
            self._tell_status()
        return refusal

    def _mark_switch(self, reason: str) -> None:
        """(the caller holds the lock, and tells the new state once it let go of it)"""
        if self._switching is None:
            self._before_switch = (self._state, self._reason)
        self._switching = reason
        self._state, self._reason = "busy", reason

    def error(self, reason: str) -> None:
        """Cannot inspect (no usable recipe, a camera that is gone): triggers are refused
        with this reason until the station is ready again."""
        self._set("error", reason)

    def offline(self, reason: str = "stopped") -> None:
        self._set("offline", reason)
        self._closed.set()

    def _next_id(self) -> tuple[str, int]:
        self._sequence += 1
        return f"{self._run}-{self._sequence}-{self._token}", self._sequence

    def result(self, image: str, result: InspectionResult) -> LineResult | None:
        """A result from the inspection loop: the pending trigger's, or an untriggered
        one. Returns what was sent (None: a late result of a trigger already answered
        by its timeout; it is stored, not sent again)."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None and pending.timed_out:
                log.warning("result %s came after its timeout: stored, not sent again", pending.result_id)
                late = True
            else:
                late = False
                if pending is not None:
                    result_id, sequence = pending.result_id, pending.sequence
                else:
                    result_id, sequence = self._next_id()
                sent = LineResult(
                    id=result_id,
                    station=self.station,
                    run=self._run or 0,
                    sequence=sequence,
                    verdict=result.verdict,
                    defects=len(result.findings),
                    anomaly_score=None if result.anomaly_score is None else round(float(result.anomaly_score), 4),
                    error=result.error,
                    image=image,
                    product=self._product or "",
                    recipe_sha256=result.recipe_hash,
                    time=utc_now(),
                    inspect_ms=round(result.total_ms, 2),
                    trigger=pending.trigger if pending else None,
                    latency_ms=round((time.monotonic() - pending.started) * 1e3, 2) if pending else None,
                )
                self._last = sent
                self.counts[result.verdict] += 1
                if pending is not None and self.require_ack:
                    self._unacknowledged = result_id
            # Ready for the next trigger before anyone hears of this result: a controller
            # that triggers as soon as it has the result is not refused as "busy".
            changed = self._after_result() != (self._state, self._reason)
            self._state, self._reason = self._after_result()
        if not late:
            self._tell_result(sent)
        if changed:
            self._tell_status()
        return None if late else sent

    def skipped(self, image: str) -> None:
        """The inspection loop skipped a frame as a picture it inspected before (the same
        file taken twice): a triggered part gets an ERROR result saying so, not a hang."""
        with self._lock:
            pending = self._pending
            if pending is None:
                return  # a hot folder's file seen before: nothing to answer
            if pending.timed_out:  # answered by its timeout already; no late result will come
                self._pending = None
                self._state, self._reason = self._after_result()
        if pending.timed_out:
            self._tell_status()
            return
        self._time_out(f"{image}: the same picture was inspected before; not inspected again", still_running=False)

    def _after_result(self) -> tuple[State, str | None]:
        """The state once nothing else is going on that this does not see."""
        if self._unacknowledged is not None:
            return "result", f"result {self._unacknowledged} awaits acknowledgement"
        if self._pending is not None:
            if self._pending.timed_out:
                return "busy", f"finishing result {self._pending.result_id}, which timed out"
            return "busy", f"inspecting for result {self._pending.result_id}"
        if self._switching is not None:
            return "busy", self._switching
        if self._state in ("starting", "error", "offline"):
            return self._state, self._reason
        return "ready", None

    # -- the line's side -----------------------------------------------------------------

    def trigger(self, trigger: str | None = None) -> Reply:
        """Inspect the next part. Accepted: the reply holds the result's id. A trigger id
        accepted before (one of the last ``REMEMBERED_TRIGGERS``) is the same part asked
        for again (a gateway that sent it twice): the reply holds that part's result id,
        and nothing is inspected."""
        with self._lock:
            if trigger is not None and trigger in self._accepted:
                return Reply(True, "trigger", "a repeat of a trigger accepted before", self._accepted[trigger], trigger)
            refusal = self._refusal()
            if refusal is None and self.fire is None:
                refusal = "this station's source does not take triggers (it inspects images as they come)"
            if refusal is not None:
                self.counts["refused"] += 1
                return Reply(False, "trigger", refusal, trigger=trigger)
            result_id, sequence = self._next_id()
            self._pending = _Pending(result_id, sequence, trigger, time.monotonic())
            if trigger is not None:
                self._accepted[trigger] = result_id
                while len(self._accepted) > REMEMBERED_TRIGGERS:
                    self._accepted.popitem(last=False)
            self._state, self._reason = "busy", f"inspecting for result {result_id}"
        for listener in list(self._listeners_promised):
            try:
                listener(result_id, trigger)
            except Exception:
                log.exception("an output could not take the promise of result %s", result_id)
        self._tell_status()
        try:
            self.fire(result_id)
        except Exception as exc:  # the source could not take it: the part gets an ERROR result, not a hang
            log.exception("taking a part for result %s failed", result_id)
            self._time_out(f"could not take the part: {exc}", still_running=False)
        return Reply(True, "trigger", result_id=result_id, trigger=trigger)

    def _refusal(self) -> str | None:
        if self._pending is not None:
            if self._pending.timed_out:
                return f"busy: still finishing result {self._pending.result_id}, which timed out"
            return f"busy: inspecting for result {self._pending.result_id}"
        if self._unacknowledged is not None:
            return f"result {self._unacknowledged} awaits acknowledgement"
        if self._state != "ready":
            return f"{self._state}: {self._reason}" if self._reason else f"not ready ({self._state})"
        return None

    def acknowledge(self, result_id: str | None = None) -> Reply:
        """The controller took the result (``result_id``: which; None: the one waiting)."""
        with self._lock:
            waiting = self._unacknowledged
            if waiting is None:
                if result_id is not None and self._last is not None and result_id == self._last.id:
                    return Reply(True, "ack", result_id=result_id)  # a repeat: already done
                return Reply(False, "ack", "no result awaits acknowledgement", result_id=result_id)
            if result_id is not None and result_id != waiting:
                return Reply(False, "ack", f"result {waiting} awaits acknowledgement, not {result_id}", result_id)
            self._unacknowledged = None
            # not "ready" by default: a station in error, or still finishing a part that
            # timed out, stays so
            state = self._after_result()
        self._set(*state)
        return Reply(True, "ack", result_id=waiting)

    def _switch_refusal(self) -> str | None:
        """Why a recipe cannot be switched now, or None (the caller holds the lock)."""
        if self._pending is not None:
            return f"busy: inspecting for result {self._pending.result_id}"
        if self._unacknowledged is not None:
            return f"result {self._unacknowledged} awaits acknowledgement"
        return None

    # -- timeouts ------------------------------------------------------------------------

    def _time_out(self, reason: str, *, still_running: bool = True) -> None:
        """Answer the pending trigger with an ERROR result: ``still_running``, its
        inspection goes on (its result will be stored, not sent); else there is none."""
        with self._lock:
            pending = self._pending
            if pending is None or pending.timed_out:
                return
            pending.timed_out = True
            sent = error_result(
                self.station,
                pending.result_id,
                reason,
                trigger=pending.trigger,
                product=self._product,
                latency_ms=round((time.monotonic() - pending.started) * 1e3, 2),
            )
            self._last = sent
            self.counts[ERROR] += 1
            if self.require_ack:
                self._unacknowledged = pending.result_id
            if still_running:
                self._state, self._reason = "busy", f"finishing result {pending.result_id}, which timed out"
            else:
                self._pending = None
                self._state, self._reason = self._after_result()
        self._tell_result(sent)
        self._tell_status()

    def abandon(self, reason: str) -> None:
        """No result will come for the part accepted (the station stops, or its run
        failed): if it was not answered yet, it gets an ERROR result now; either way the
        station no longer waits for it."""
        with self._lock:
            pending = self._pending
            if pending is not None and pending.timed_out:
                self._pending = None
                changed = self._after_result() != (self._state, self._reason)
                self._state, self._reason = self._after_result()
        if pending is None:
            return
        if not pending.timed_out:
            self._time_out(reason, still_running=False)
        elif changed:
            self._tell_status()

    def _watch(self) -> None:
        while not self._closed.wait(0.05):
            with self._lock:
                pending = self._pending
                overdue = (
                    pending is not None and not pending.timed_out and time.monotonic() - pending.started > self.timeout
                )
            if overdue:
                self._time_out(f"no result within {self.timeout:g} s of the trigger")

    def close(self) -> None:
        self._closed.set()
        self._watchdog.join(timeout=1)
