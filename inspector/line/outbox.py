"""Results waiting to be sent, in order, kept on disk so that a station that is killed
or restarted sends what it had not sent yet when it starts again.

The journal is an append-only text file: ``? <id> <trigger>`` when a trigger is promised
a result id, ``+ <id> <payload>`` when a result is added, ``- <id>`` once the receiver has
it. Opening it replays the file, keeps what was added and not taken, in order, and the
promises no result kept (``broken``: the station was killed while the part was being
inspected), and writes the file anew with only what still waits: the results and the
open promises. It is written anew the same way whenever it has grown far beyond what
still waits (a broker out of reach for days does not fill the disk). A last line without
its newline (a process killed while writing it) is not an entry, nor is a result whose
payload is not JSON: both are skipped. Each line is flushed
to the operating system as it is written, so a killed process loses nothing; a power cut
can lose the last lines, as it can any file not forced to the disk.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

COMPACT_AFTER = 10_000  # lines in the file before it may be written anew with only what waits
COMPACT_RATIO = 4  # ... once it holds this many times more lines than entries that wait


def _trigger_of(payload: bytes) -> str | None:
    try:
        trigger = json.loads(payload)
    except ValueError:
        return None
    return trigger if isinstance(trigger, str) else None


class Journal:
    """The results an output has not delivered yet, and the result ids promised to
    triggers whose results are not out yet, surviving restarts.

    Args:
        path: the journal's file (created with its folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pending, promised = self._replay()
        self.broken: list[tuple[str, str | None]] = list(promised.items())  # (result id, trigger) never added
        # kept until their results are added: written anew with the results, a promise
        # survives any number of restarts until the ERROR result it stands for is added
        self._promised: OrderedDict[str, str | None] = promised
        self._file = self._rewrite()

    def _replay(self) -> tuple[OrderedDict[str, bytes], OrderedDict[str, str | None]]:
        pending: OrderedDict[str, bytes] = OrderedDict()
        promised: OrderedDict[str, str | None] = OrderedDict()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return pending, promised
        lines = data.split(b"\n")
        if lines[-1]:  # no newline after it: the half-written last line of a killed process
            log.warning("%s: the last line was cut off; skipped", self.path)
        for number, line in enumerate(lines[:-1], 1):
            if not line:
                continue
            kind, _, rest = line.partition(b" ")
            result_id, _, payload = rest.partition(b" ")
            key = result_id.decode(errors="replace")
            if kind == b"+" and result_id and _is_json(payload):
                pending[key] = payload
                promised.pop(key, None)
            elif kind == b"-" and result_id:
                pending.pop(key, None)
                promised.pop(key, None)
            elif kind == b"?" and result_id:
                promised[key] = _trigger_of(payload)
            else:  # damage
                log.warning("%s: line %d is not a journal entry; skipped", self.path, number)
        if pending:
            log.info("%s: %d results from before are sent first", self.path, len(pending))
        return pending, promised

    def _rewrite(self):
        """The file written anew with only what waits; returns it open for appending."""
        temporary = self.path.with_suffix(self.path.suffix + ".new")
        with open(temporary, "wb") as out:
            for result_id, trigger in self._promised.items():
                out.write(_promise_line(result_id, trigger))
            for result_id, payload in self.pending.items():
                out.write(b"+ " + result_id.encode() + b" " + payload + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        self._lines = len(self._promised) + len(self.pending)
        return open(self.path, "ab")  # held open for the station's life

    def promise(self, result_id: str, trigger: str | None) -> None:
        """A trigger was given ``result_id``: until its result is added, a restart finds it broken."""
        self._promised[result_id] = trigger
        self._write(_promise_line(result_id, trigger))

    def add(self, result_id: str, payload: bytes) -> None:
        self.pending[result_id] = payload
        self._promised.pop(result_id, None)
        self._write(b"+ " + result_id.encode() + b" " + payload + b"\n")

    def done(self, result_id: str) -> None:
        if self.pending.pop(result_id, None) is None:
            return
        self._write(b"- " + result_id.encode() + b"\n")

    def _write(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        self._lines += 1
        waiting = len(self.pending) + len(self._promised)
        if self._lines > COMPACT_AFTER and self._lines > COMPACT_RATIO * waiting:
            self._file.close()
            self._file = self._rewrite()

    def close(self) -> None:
        self._file.close()


def _promise_line(result_id: str, trigger: str | None) -> bytes:
    return b"? " + result_id.encode() + b" " + json.dumps(trigger).encode() + b"\n"


def _is_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return False
    return True
