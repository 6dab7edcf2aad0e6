"""The records that flow through the runtime: :class:`Frame` (Source -> Engine) and
:class:`Result` (Engine -> Sinks, dashboard).

Example:
    >>> import numpy as np
    >>> f = Frame("cam", 0, 0.0, 1700000000.0, np.zeros((4, 4, 3), np.uint8))
    >>> f.height, f.width
    (4, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        source: Source name (credentials redacted).
        index: Frame index in the source (counting every decoded frame, strided ones too).
        stream_time: Seconds from the start of the stream (source timestamps or index / fps).
        wall_time: Unix time when the frame was captured.
        image: BGR uint8 ``H x W x 3`` image.
    """

    source: str
    index: int
    stream_time: float
    wall_time: float
    image: np.ndarray

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])


@dataclass
class Result:
    """The count of one frame, everything sinks and the dashboard need.

    Attributes:
        frame: The frame that was counted.
        count: Raw count (integral of the density inside the ROI).
        density: Density map in frame coordinates (ROI applied).
        latency_ms: Engine time of the batch that held this frame.
        smoothed: Smoothed count (equal to ``count`` without smoothing).
        zones: Raw count per zone.
        zones_smoothed: Smoothed count per zone.
        fps: End-to-end processed frames per second of this source at that moment.
        alerts: Alert events raised by this frame (see :mod:`streamcount.alerts`).
        annotated: The overlay image, filled in once by the output stage when a sink needs it.
        batch: Frames in the engine call that held this frame (``latency_ms / batch`` is the
            engine time per frame).
    """

    frame: Frame
    count: float
    density: np.ndarray
    latency_ms: float
    smoothed: float = 0.0
    zones: dict[str, float] = field(default_factory=dict)
    zones_smoothed: dict[str, float] = field(default_factory=dict)
    fps: float = 0.0
    alerts: list = field(default_factory=list)
    annotated: np.ndarray | None = None
    batch: int = 1

    @property
    def source(self) -> str:
        """The frame's source name."""
        return self.frame.source

    @property
    def index(self) -> int:
        """The frame's index in its source."""
        return self.frame.index

    @property
    def stream_time(self) -> float:
        """Seconds from the start of the stream."""
        return self.frame.stream_time

    @property
    def wall_time(self) -> float:
        """Unix time of capture."""
        return self.frame.wall_time

    def row(self, ndigits: int = 3) -> dict[str, object]:
        """A flat record for CSV/JSONL sinks.

        Example:
            >>> f = Frame("a", 3, 0.3, 1.0, np.zeros((2, 2, 3), np.uint8))
            >>> Result(f, 1.23456, np.zeros((2, 2), np.float32), 5.0, 1.2).row()["count"]
            1.235
        """
        rec: dict[str, object] = {
            "source": self.source,
            "frame": self.index,
            "stream_time": round(self.stream_time, 3),
            "wall_time": round(self.wall_time, 3),
            "count": round(self.count, ndigits),
            "smoothed": round(self.smoothed, ndigits),
            "latency_ms": round(self.latency_ms, 2),
        }
        for name, v in self.zones.items():
            rec[f"zone:{name}"] = round(v, ndigits)
            rec[f"zone:{name}:smoothed"] = round(self.zones_smoothed.get(name, v), ndigits)
        return rec
