"""CSV sink: one row per processed frame, flushed per row (an interrupt loses no row).

Columns: ``source, frame, stream_time, wall_time, count, smoothed, latency_ms`` and for each
zone ``zone:NAME`` and ``zone:NAME:smoothed``.

Example:
    >>> import tempfile, numpy as np
    >>> from streamcount.frames import Frame, Result
    >>> p = Path(tempfile.mkdtemp()) / "c.csv"
    >>> with CsvSink(p) as s:
    ...     s.write(Result(Frame("a", 0, 0.0, 1.0, np.zeros((2, 2, 3), np.uint8)), 1.5,
    ...                    np.zeros((2, 2), np.float32), 3.0, 1.5))
    >>> p.read_text().splitlines()[1]
    'a,0,0.0,1.0,1.5,1.5,3.0'
"""

from __future__ import annotations

import csv
from pathlib import Path

from streamcount.frames import Result
from streamcount.sinks import TextFileSink

BASE_COLUMNS = ["source", "frame", "stream_time", "wall_time", "count", "smoothed", "latency_ms"]


class CsvSink(TextFileSink):
    """Writes results as CSV rows.

    Args:
        path: Output file.
        zones: Zone names (one raw and one smoothed column each).
        append: Add rows to an existing file (its header is kept).
    """

    kind = "CSV"

    def __init__(self, path: str | Path, zones: list[str] | None = None,
                 append: bool = False) -> None:
        super().__init__(path, append)
        self.columns = list(BASE_COLUMNS)
        for z in zones or []:
            self.columns += [f"zone:{z}", f"zone:{z}:smoothed"]

    def open(self) -> None:
        """Create the file and write the header."""
        super().open()
        assert self.fh is not None  # opened by super().open() (or it raised)
        self.writer = csv.DictWriter(self.fh, self.columns, extrasaction="ignore")
        if self.fresh:
            self.writer.writeheader()
        self.fh.flush()

    def write(self, result: Result) -> None:
        """Append one row and flush it."""
        assert self.fh is not None, "open() first"
        self.writer.writerow(result.row())
        self.fh.flush()
        self.rows += 1
