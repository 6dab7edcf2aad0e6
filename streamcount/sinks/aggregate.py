"""Aggregates (``--aggregate 60s --aggregate-out FILE``): min / mean / max count per time window,
per source and zone (``total`` is the whole frame), by stream time. Rows are written and
flushed as each window closes, and the open windows at :meth:`close`.

Columns: ``source, window_start, window_end, zone, frames, min, mean, max``.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from streamcount.errors import InputError
from streamcount.frames import Result
from streamcount.sinks import Sink, open_text

COLUMNS = ["source", "window_start", "window_end", "zone", "frames", "min", "mean", "max"]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``60s``, ``5m``, ``1h`` or ``1.5m``.

    Example:
        >>> parse_duration("60s"), parse_duration("5m"), parse_duration("2")
        (60.0, 300.0, 2.0)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise InputError(f"bad duration '{text}': use e.g. 60s, 5m, 1h")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


@dataclass
class _Window:
    start: float
    n: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    total: float = 0.0

    def add(self, v: float) -> None:
        self.n += 1
        self.lo = min(self.lo, v)
        self.hi = max(self.hi, v)
        self.total += v


class AggregateSink(Sink):
    """Min/mean/max per window.

    Args:
        path: Output CSV.
        window_s: Window length in seconds of stream time.
        use_smoothed: Aggregate smoothed counts instead of raw ones.
    """

    def __init__(self, path: str | Path, window_s: float, use_smoothed: bool = False) -> None:
        self.path = Path(path)
        self.window = float(window_s)
        self.use_smoothed = use_smoothed
        self.open_windows: dict[tuple[str, str], _Window] = {}
        self.fh: TextIO | None = None
        self.rows = 0

    def open(self) -> None:
        """Create the CSV and write its header."""
        self.fh = open_text(self.path, "aggregate CSV")
        self.writer = csv.writer(self.fh)
        self.writer.writerow(COLUMNS)

    def write(self, result: Result) -> None:
        """Add the result to its window; write windows that closed."""
        start = math.floor(result.stream_time / self.window) * self.window
        values = {"total": result.smoothed if self.use_smoothed else result.count}
        values.update(result.zones_smoothed if self.use_smoothed else result.zones)
        for zone, v in values.items():
            key = (result.source, zone)
            w = self.open_windows.get(key)
            if w is not None and w.start != start:
                self._emit(key, w)
                w = None
            if w is None:
                w = self.open_windows[key] = _Window(start)
            w.add(v)
        assert self.fh is not None
        self.fh.flush()

    def _emit(self, key: tuple[str, str], w: _Window) -> None:
        self.writer.writerow([key[0], round(w.start, 3), round(w.start + self.window, 3), key[1],
                              w.n, round(w.lo, 3), round(w.total / w.n, 3), round(w.hi, 3)])
        self.rows += 1

    def close(self) -> None:
        """Write the windows still open (partial) and close the file."""
        if self.fh is None:
            return
        for key, w in self.open_windows.items():
            if w.n:
                self._emit(key, w)
        self.open_windows.clear()
        self.fh.close()
        self.fh = None
