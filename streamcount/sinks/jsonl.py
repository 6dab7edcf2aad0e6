"""JSON Lines sink: one object per processed frame, flushed per line.

Each line: ``source, frame, stream_time, wall_time, count, smoothed, latency_ms``, ``zones``
(``{name: {"count": .., "smoothed": ..}}``) and ``alerts`` (events raised by that frame).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from streamcount.frames import Result
from streamcount.sinks import TextFileSink


class JsonlSink(TextFileSink):
    """Writes results as JSON lines.

    Example:
        >>> import tempfile, numpy as np
        >>> from pathlib import Path
        >>> from streamcount.frames import Frame, Result
        >>> p = Path(tempfile.mkdtemp()) / "r.jsonl"
        >>> with JsonlSink(p) as s:
        ...     s.write(Result(Frame("a", 0, 0.0, 1.0, np.zeros((2, 2, 3), np.uint8)), 2.0,
        ...                    np.zeros((2, 2), np.float32), 3.0, 2.0, {"z": 1.0}, {"z": 1.0}))
        >>> json.loads(p.read_text())["zones"]
        {'z': {'count': 1.0, 'smoothed': 1.0}}
    """

    kind = "JSONL"

    def write(self, result: Result) -> None:
        """Append one line and flush it."""
        assert self.fh is not None, "open() first"
        rec = {
            "source": result.source, "frame": result.index,
            "stream_time": round(result.stream_time, 3), "wall_time": round(result.wall_time, 3),
            "count": round(result.count, 3), "smoothed": round(result.smoothed, 3),
            "latency_ms": round(result.latency_ms, 2),
            "zones": {k: {"count": round(v, 3),
                          "smoothed": round(result.zones_smoothed.get(k, v), 3)}
                      for k, v in result.zones.items()},
        }  # fmt: skip
        if result.alerts:
            rec["alerts"] = [asdict(a) for a in result.alerts]
        self.fh.write(json.dumps(rec) + "\n")
        self.fh.flush()
        self.rows += 1
