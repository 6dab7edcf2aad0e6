"""Per-source counting after the engine: ROI, zones, smoothing and alerts, into a Result."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamcount.alerts import AlertMonitor
from streamcount.frames import Frame, Result
from streamcount.smoothing import Smoother
from streamcount.zones import ZoneSet, measure

_NO_DENSITY = np.zeros((0, 0), np.float32)


class Analyzer:
    """Per-source counting logic after the engine: ROI, zones, smoothing, alerts."""

    def __init__(self, source: str, zones: ZoneSet, smoother: Callable[[], Smoother]) -> None:
        self.zones = zones
        self.total = smoother()
        self.per_zone: dict[str, Smoother] = {z: smoother() for z in zones.names}
        self.monitor = AlertMonitor(source, {z.name: z.alerts for z in zones.zones})

    def __call__(self, frame: Frame, density: np.ndarray, count: float,
                 latency_ms: float) -> Result:
        """Build the frame's :class:`Result` from its density map."""
        count, zc, density = measure(self.zones, density, count)
        return self.update(frame, count, zc, latency_ms, density)

    def update(self, frame: Frame, count: float, zone_counts: dict[str, float],
               latency_ms: float, density: np.ndarray | None = None) -> Result:
        """Smooth and check alerts for counts already measured (ROI applied)."""
        zs = {z: self.per_zone[z].update(v) for z, v in zone_counts.items() if z in self.per_zone}
        res = Result(frame, count, _NO_DENSITY if density is None else density, latency_ms,
                     self.total.update(count), zone_counts, zs)
        res.alerts = self.monitor.update(zs, frame.stream_time, frame.wall_time)
        return res
