"""Exactly-once rows: which frame of each source was written last.

Every row carries its source and frame index. Only the driver writes rows, in frame order per
source, and it writes a row only when its index is past the last one written (the *commit
point*); the CSV/JSONL line is flushed before the commit point moves. When a source or
inference actor dies, the driver drops that source's batches in flight and reopens the source
at commit point + 1, so nothing is skipped (at least once) and nothing is written twice (at most
once). Live sources resume at the newest frame: what arrived while an actor was down was never
counted, and is reported as skipped, not lost.

The commit point survives a restart of the driver too: :func:`recover` reads it back from the
last complete line of a source's CSV or JSONL file (a torn last line from a crash is cut off), so
``streamcount fleet --resume`` continues every file source where its rows end.

Example:
    >>> led = Ledger()
    >>> led.fresh("cam", 0), led.commit("cam", 0), led.fresh("cam", 0), led.resume_at("cam")
    (True, None, False, 1)
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path


class Ledger:
    """The commit point (last written frame index) of each source."""

    def __init__(self, committed: dict[str, int] | None = None) -> None:
        self.committed: dict[str, int] = dict(committed or {})

    def fresh(self, source: str, index: int) -> bool:
        """True when ``index`` of ``source`` has not been written yet."""
        return index > self.committed.get(source, -1)

    def commit(self, source: str, index: int) -> None:
        """Record that the row of ``index`` reached the sinks."""
        if index > self.committed.get(source, -1):
            self.committed[source] = index

    def resume_at(self, source: str) -> int:
        """The first frame index still to count for ``source``."""
        return self.committed.get(source, -1) + 1


def recover(path: Path) -> int:
    """The frame index of the last complete row in a CSV or JSONL file (-1: none).

    A last line without its newline (the process died while writing it) is cut off the file,
    so appending continues on a clean line.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.jsonl"
        >>> _ = p.write_text('{"frame": 0}\\n{"frame": 1}\\n{"fra')
        >>> recover(p), p.read_text().count("\\n")
        (1, 2)
    """
    if not path.is_file():
        return -1
    with path.open("rb+") as fh:
        size = fh.seek(0, io.SEEK_END)
        tail_start = max(0, size - 65536)
        fh.seek(tail_start)
        tail = fh.read()
        cut = tail.rfind(b"\n") + 1
        if cut < len(tail):
            fh.truncate(tail_start + cut)
        tail = tail[:cut]
    lines = [ln for ln in tail.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return -1
    if path.suffix == ".jsonl":
        for ln in reversed(lines):
            try:
                return int(json.loads(ln)["frame"])
            except (ValueError, KeyError, TypeError):
                continue
        return -1
    header = path.open(encoding="utf-8").readline()
    cols = next(csv.reader([header]), [])
    if "frame" not in cols:
        return -1
    k = cols.index("frame")
    for row in csv.reader(reversed(lines)):
        if len(row) > k and row[k].strip().isdigit():
            return int(row[k])
    return -1
