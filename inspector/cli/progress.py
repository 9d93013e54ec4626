"""Progress on a terminal: one live status line; plain lines when output is redirected."""

from __future__ import annotations

import sys
import time


def printable(text: str) -> str:
    """``text`` with control characters written as escapes: a file name holding a newline
    would otherwise break the one-line-per-image output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Progress:
    """Counts steps; on a terminal redraws one line, otherwise prints each message."""

    def __init__(self, *, enabled: bool = True, stream=None, total: int | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.total = total
        self.count = 0
        self.started = time.monotonic()

    def step(self, message: str) -> None:
        self.count += 1
        if not self.enabled:
            return
        message = printable(message)
        if not self.live:
            print(message, file=self.stream, flush=True)
            return
        rate = self.count / max(time.monotonic() - self.started, 1e-6)
        if self.total:
            filled = 24 * self.count // self.total
            head = f"[{'#' * filled}{'.' * (24 - filled)}] {self.count}/{self.total}"
        else:
            head = f"{self.count} images"
        line = f"\r{head}  {rate:.1f}/s  {message}"[:160]
        self.stream.write(line.ljust(100))
        self.stream.flush()

    def done(self) -> None:
        if self.live and self.count:
            self.stream.write("\n")
            self.stream.flush()
