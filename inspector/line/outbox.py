"""Results waiting to be sent, in order, kept on disk so that a station that is killed
or restarted sends what it had not sent yet when it starts again.

The journal is an append-only text file: ``? <id> <trigger>`` when a trigger is promised
a result id, ``+ <id> <payload>`` when a result is added, ``- <id>`` once the receiver has
it. Opening it replays the file, keeps what was added and not taken, in order, and the
promises no result kept (``broken``: the station was killed while the part was being
inspected), and writes the file anew with only the results. Each line is flushed
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

COMPACT_AFTER = 10_000  # lines written before an empty journal is started anew


def _trigger_of(payload: bytes) -> str | None:
    try:
        trigger = json.loads(payload)
    except ValueError:
        return None
    return trigger if isinstance(trigger, str) else None


class Journal:
    """The results an output has not delivered yet, surviving restarts.

    Args:
        path: the journal's file (created with its folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.broken: list[tuple[str, str | None]] = []  # (result id, trigger) promised, never added
        self.pending: OrderedDict[str, bytes] = self._replay()
        self._rewrite()
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the station's life
        self._lines = len(self.pending)

    def _replay(self) -> OrderedDict[str, bytes]:
        pending: OrderedDict[str, bytes] = OrderedDict()
        promised: dict[str, str | None] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return pending
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line:
                continue
            kind, _, rest = line.partition(b" ")
            result_id, _, payload = rest.partition(b" ")
            key = result_id.decode(errors="replace")
            if kind == b"+" and result_id and payload:
                pending[key] = payload
                promised.pop(key, None)
            elif kind == b"-" and result_id:
                pending.pop(key, None)
                promised.pop(key, None)
            elif kind == b"?" and result_id:
                promised[key] = _trigger_of(payload)
            else:  # the half-written last line of a killed process, or damage
                log.warning("%s: line %d is not a journal entry; skipped", self.path, number)
        if pending:
            log.info("%s: %d results from before are sent first", self.path, len(pending))
        self.broken = list(promised.items())
        return pending

    def _rewrite(self) -> None:
        temporary = self.path.with_suffix(self.path.suffix + ".new")
        with open(temporary, "wb") as out:
            for result_id, payload in self.pending.items():
                out.write(b"+ " + result_id.encode() + b" " + payload + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def promise(self, result_id: str, trigger: str | None) -> None:
        """A trigger was given ``result_id``: until its result is added, a restart finds it broken."""
        self._write(b"? " + result_id.encode() + b" " + json.dumps(trigger).encode() + b"\n")

    def add(self, result_id: str, payload: bytes) -> None:
        self.pending[result_id] = payload
        self._write(b"+ " + result_id.encode() + b" " + payload + b"\n")

    def done(self, result_id: str) -> None:
        if self.pending.pop(result_id, None) is None:
            return
        self._write(b"- " + result_id.encode() + b"\n")
        if not self.pending and self._lines > COMPACT_AFTER:
            self._file.truncate(0)
            self._lines = 0

    def _write(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        self._lines += 1

    def close(self) -> None:
        self._file.close()
