"""Count-over-time plot (``--plot PATH``, PNG).

Needs the ``plot`` extra: ``pip install 'streamcount[plot]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamcount.errors import OutputError, require
from streamcount.frames import Result
from streamcount.sinks import Sink, check_writable


class PlotSink(Sink):
    """Collects (stream time, count, smoothed) per source and plots them at :meth:`close`.

    Args:
        path: Output PNG.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.series: dict[str, tuple[list[float], list[float], list[float]]] = {}
        self.zones: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        self.written = False

    def open(self) -> None:
        """Check matplotlib and the path before any frame is processed."""
        require("matplotlib", "plot")
        check_writable(self.path, "plot")

    def write(self, result: Result) -> None:
        """Remember one point."""
        t, c, s = self.series.setdefault(result.source, ([], [], []))
        t.append(result.stream_time)
        c.append(result.count)
        s.append(result.smoothed)
        zones = self.zones.setdefault(result.source, {})
        for name, value in result.zones_smoothed.items():
            zt, zv = zones.setdefault(name, ([], []))
            zt.append(result.stream_time)
            zv.append(value)

    def close(self) -> None:
        """Draw and save the PNG (once)."""
        if self.written or not self.series:
            return
        self.written = True
        mpl: Any = require("matplotlib", "plot")
        mpl.use("Agg")
        import matplotlib.pyplot as plt

        from streamcount.dashboard import short_name

        fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
        for name, (t, c, s) in self.series.items():
            label = short_name(name, 40)  # the file name, not its whole path
            line = ax.plot(t, c, lw=0.8, alpha=0.5, label=f"{label} (raw)")[0]
            ax.plot(t, s, lw=1.6, color=line.get_color(), label=f"{label} (smoothed)")
            for zone, (zt, zv) in self.zones.get(name, {}).items():
                ax.plot(zt, zv, lw=1.1, ls="--", label=f"{label}: {zone} (smoothed)")
        ax.set_xlabel("stream time (s)")
        ax.set_ylabel("count")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
        fig.tight_layout()
        try:
            fig.savefig(self.path)
        except OSError as exc:
            raise OutputError(f"cannot write plot {self.path}: {exc.strerror}") from None
        finally:
            plt.close(fig)
