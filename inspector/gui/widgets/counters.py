"""Operate's counters: this run's, and the shift's beside them, which only an explicit
reset sets to zero; each reset is recorded as one JSON line in ``shifts.jsonl``."""

from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QMessageBox, QPushButton, QWidget

from inspector import settings

SHIFT_FIELDS = ("Inspected", "Pass", "Fail", "Error", "Yield")
RUN_ONLY = ("Throughput", "Latency", "Skipped")
_VALUE_STYLE = "font-size:16px;font-weight:bold"


def shifts_file() -> Path:
    """Where shift resets are recorded: ``shifts.jsonl`` in the data folder."""
    return settings.data_dir() / "shifts.jsonl"


def append_shift_record(path: Path, record: dict) -> Path:
    """Append ``record`` as one JSON line to ``path`` (made with its folder where missing),
    flushed to the disk before it returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path


def _figures(counts: Counter) -> dict[str, str]:
    judged = counts["PASS"] + counts["FAIL"]
    return {
        "Inspected": str(counts["PASS"] + counts["FAIL"] + counts["ERROR"]),
        "Pass": str(counts["PASS"]),
        "Fail": str(counts["FAIL"]),
        "Error": str(counts["ERROR"]),
        "Yield": f"{100 * counts['PASS'] / judged:.1f} %" if judged else "-",
    }


class CountersPanel(QWidget):
    """Signals: message(text, is_error) for the status bar."""

    message = Signal(str, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._run: Counter = Counter()
        self._shift: Counter = Counter()
        self.shift_started = datetime.now().astimezone()
        self._latencies: deque[float] = deque(maxlen=50)
        self._started = time.monotonic()
        self._resetting = None  # the worker writing a reset's record
        self.station = ""  # the station named in reset records (set by Operate)
        self.counters = {name: QLabel("0") for name in (*SHIFT_FIELDS, *RUN_ONLY)}
        self.shift_counters = {name: QLabel("0") for name in SHIFT_FIELDS}
        self.shift_since = QLabel()
        self.reset_button = QPushButton("New shift…")
        self.reset_button.setToolTip("Record the shift's counts in shifts.jsonl and start the shift counters at zero")
        self.reset_button.clicked.connect(self.ask_reset)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Run"), 0, 1)
        grid.addWidget(QLabel("Shift"), 0, 2)
        for row, name in enumerate((*SHIFT_FIELDS, *RUN_ONLY), start=1):
            grid.addWidget(QLabel(name), row, 0)
            self.counters[name].setStyleSheet(_VALUE_STYLE)
            grid.addWidget(self.counters[name], row, 1)
            if name in self.shift_counters:
                self.shift_counters[name].setStyleSheet(_VALUE_STYLE)
                grid.addWidget(self.shift_counters[name], row, 2)
        row = len(SHIFT_FIELDS) + len(RUN_ONLY) + 1
        grid.addWidget(self.shift_since, row, 0, 1, 2)
        grid.addWidget(self.reset_button, row, 2)
        self.update_figures()

    # -- counting ------------------------------------------------------------------------

    def start_run(self) -> None:
        self._run.clear()
        self._latencies.clear()
        self._started = time.monotonic()
        self.update_figures()

    def add(self, verdict: str, latency_ms: float) -> None:
        self._run[verdict] += 1
        self._shift[verdict] += 1
        self._latencies.append(latency_ms)
        self.update_figures()

    def add_skipped(self) -> None:
        self._run["skipped"] += 1
        self.update_figures()

    def update_figures(self) -> None:
        run = _figures(self._run)
        inspected = int(run["Inspected"])
        elapsed = max(time.monotonic() - self._started, 1e-6)
        run["Throughput"] = f"{inspected / elapsed:.2f} /s"
        run["Latency"] = f"{np.median(self._latencies):.0f} ms" if self._latencies else "-"
        run["Skipped"] = str(self._run["skipped"])
        for name, value in run.items():
            self.counters[name].setText(value)
        for name, value in _figures(self._shift).items():
            self.shift_counters[name].setText(value)
        self.shift_since.setText(f"Shift since {self.shift_started:%a %H:%M}")
        self.shift_since.setToolTip(f"Shift counters since {self.shift_started:%Y-%m-%d %H:%M:%S %Z}")

    # -- the shift -------------------------------------------------------------------------

    def state(self) -> dict:
        """The shift's counts and start, to be remembered across restarts."""
        counts = {k: self._shift[k] for k in ("PASS", "FAIL", "ERROR")}
        return {"started": self.shift_started.isoformat(), "counts": counts}

    def restore(self, state: object) -> None:
        """The shift as ``state()`` gave it; anything else (an older or damaged setting)
        starts a shift now."""
        try:
            started = datetime.fromisoformat(state["started"])
            counts = Counter({k: int(state["counts"][k]) for k in ("PASS", "FAIL", "ERROR")})
        except (TypeError, KeyError, ValueError):
            return
        if started.tzinfo is None or any(v < 0 for v in counts.values()):
            return
        self.shift_started, self._shift = started, counts
        self.update_figures()

    def ask_reset(self) -> None:
        figures = _figures(self._shift)
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "New shift",
            f"Start a new shift? This shift's counts ({figures['Inspected']} inspected, {figures['Fail']} fail, "
            f"{figures['Error']} error since {self.shift_started:%H:%M}) are recorded in {shifts_file()} "
            "and the shift counters start at zero.",
            buttons.Yes | buttons.No,
            buttons.No,
        )
        if answer == buttons.Yes:
            self.reset_shift()

    def reset_shift(self):
        """Record the shift's counts, then set them to zero: on a worker thread (the data
        folder may be slow); a record that cannot be written leaves the counts as they
        are. Results that come meanwhile count for the new shift. Returns the worker."""
        from inspector.gui.workers import TaskWorker

        if self._resetting is not None:
            return None
        at = datetime.now().astimezone()
        counts = Counter({k: self._shift[k] for k in ("PASS", "FAIL", "ERROR")})
        record = {
            "time": at.isoformat(timespec="seconds"),
            "station": self.station,
            "shift_started": self.shift_started.isoformat(timespec="seconds"),
            "counts": {
                "inspected": sum(counts.values()),
                "pass": counts["PASS"],
                "fail": counts["FAIL"],
                "error": counts["ERROR"],
            },
        }
        path = shifts_file()
        worker = self._resetting = TaskWorker(lambda: append_shift_record(path, record), self)
        worker.done.connect(lambda written: self._reset_done(at, counts, written))
        worker.failed.connect(lambda text: self.message.emit(f"The shift was not reset: {text}", True))
        worker.finished.connect(self._reset_finished)
        self.reset_button.setEnabled(False)
        worker.start()
        return worker

    def _reset_done(self, at: datetime, counts: Counter, written: Path) -> None:
        self._shift.subtract(counts)
        self.shift_started = at
        self.update_figures()
        self.message.emit(f"New shift from {at:%H:%M}; the last shift's counts are recorded in {written}", False)

    def _reset_finished(self) -> None:
        worker, self._resetting = self._resetting, None
        worker.wait()  # "finished" comes just before the thread ends
        worker.deleteLater()
        self.reset_button.setEnabled(True)

    def shutdown(self) -> None:
        if self._resetting is not None:
            self._resetting.wait()
