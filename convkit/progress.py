"""The per-epoch progress display of `fit`: batches done/total, loss and metrics, samples/s and ETA.

On a terminal the line is redrawn in place with '\\r' (at most 10 times a second); anywhere else (CI logs,
files) a plain line is printed every `interval` seconds, and always once at the end of the epoch.
"""
from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def format_logs(logs: Dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in logs.items())


class ProgressBar:
    """One epoch's progress. `update(batches_done, samples_done, logs)` after each batch, `finish(logs)` at the
    end (its logs may add the validation entries)."""

    WIDTH = 20
    TTY_REDRAW_SECONDS = 0.1

    def __init__(self, epoch: int, epochs: int, total_batches: int, stream: Optional[TextIO] = None,
                 interval: float = 30.0, live: bool = True, clock=time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        self.total = total_batches
        self.live = live  # False: only the end-of-epoch line
        self.interval = self.TTY_REDRAW_SECONDS if self.tty else interval
        self.clock = clock
        self.start = self.last_shown = clock()
        self.samples = self.done = 0
        self.logs: Dict[str, float] = {}

    def _line(self, done: int, logs: Dict[str, float], tail: str) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        filled = self.WIDTH * done // max(self.total, 1)
        bar = ("=" * filled + ">" + "." * self.WIDTH)[:self.WIDTH]
        parts = [self.prefix, f"{done}/{self.total} [{bar}]", format_logs(logs),
                 f"{self.samples / elapsed:.0f} samples/s", tail]
        return "  ".join(p for p in parts if p)

    def _elapsed(self) -> str:
        return _duration(self.clock() - self.start)

    def _show(self, line: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, done: int, samples: int, logs: Dict[str, float]) -> None:
        self.samples, self.done, self.logs = samples, done, logs
        now = self.clock()
        if self.live and now - self.last_shown >= self.interval and done < self.total:
            self.last_shown = now
            eta = (now - self.start) / max(done, 1) * (self.total - done)
            self._show(self._line(done, logs, f"ETA {_duration(eta)}"), final=False)

    def finish(self, logs: Dict[str, float]) -> None:
        self._show(self._line(self.total, logs, self._elapsed()), final=True)

    def interrupt(self) -> None:
        """Ends the display of an epoch cut short by Ctrl-C."""
        self._show(self._line(self.done, self.logs, f"{self._elapsed()}  interrupted"), final=True)
