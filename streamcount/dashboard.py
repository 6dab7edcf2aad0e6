"""The live terminal dashboard (rich): one row per source, one sub-row per zone.

Shows the current and smoothed count, a sparkline of recent counts with its range, fps now and
since the start, engine time per frame p50/p95, queue depth, skipped/corrupt frames,
reconnects, the provider really in use, active
alerts, and for files a progress bar with ETA. It is on only when stdout is a terminal (and
not ``--no-dashboard``); :func:`render_text` renders it to a string (tests, logs).

Example:
    >>> from streamcount.stats import SourceStats
    >>> st = SourceStats("cam", live=True)
    >>> "cam" in render_text(Dashboard({"cam": st}, provider="cpu", model="tiny"))
    True
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence

from rich import box
from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    RenderableType,
    RenderResult,
)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streamcount.stats import SourceStats

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """Unicode sparkline of the last ``width`` values.

    Example:
        >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7])
        '▁▂▃▄▅▆▇█'
    """
    vals = list(values)[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo
    if span <= 1e-9:
        return _BARS[0] * len(vals)
    return "".join(_BARS[min(7, int((v - lo) / span * 7 + 0.5))] for v in vals)


def short_name(name: str, width: int = 28) -> str:
    """A source name that fits a column: file names without folders, long ones cut in the
    middle (the start and the extension or stream path stay readable).

    Example:
        >>> short_name("/data/videos/clip.mp4"), short_name("rtsp://***@cam/1")
        ('clip.mp4', 'rtsp://***@cam/1')
        >>> short_name("entrance_camera_2026-11-27.mp4", 16)
        'entrance…-27.mp4'
    """
    if "://" not in name and "/" in name.rstrip("/"):
        name = name.rstrip("/").rsplit("/", 1)[1]
    if len(name) <= width:
        return name
    tail = (width - 1) // 2
    return name[: width - 1 - tail] + "…" + name[-tail:]


def _eta(st: SourceStats) -> str:
    if not st.total or not st.processed or st.finished:
        return ""
    done = max(st.last_index + 1, 1)
    rate = done / max(st.elapsed, 1e-6)
    left = max(0.0, (st.total - done) / rate)
    return time.strftime("%H:%M:%S", time.gmtime(left)) if left < 86400 else ">1 day"


class Dashboard:
    """A rich renderable over the pipeline's :class:`SourceStats`.

    Args:
        stats: Source name -> statistics (read live).
        provider: The execution provider really in use (``cpu``, ``cuda``, ``tensorrt``).
        model: Model name.
        title: Panel title.
    """

    def __init__(self, stats: Mapping[str, SourceStats], provider: str = "", model: str = "",
                 title: str = "streamcount") -> None:
        self.stats = stats
        self.provider = provider
        self.model = model
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width)

    def render(self, width: int = 120) -> RenderableType:
        """The dashboard as one rich renderable, laid out for ``width`` columns.

        Below 110 columns the sparkline and names are shortened and the queue and skip columns
        share one, so every column stays visible at 80.
        """
        narrow = width < 110
        name_w, spark_w, state_w = (18, 8, 10) if narrow else (28, 16, 40)
        t = Table(title=f"{self.title} — model {self.model} on {self.provider}", expand=False,
                  title_justify="left", show_lines=False, pad_edge=False,
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, show_edge=not narrow,
                  collapse_padding=narrow)
        cols: list[tuple[str, JustifyMethod]]
        if narrow:  # short headers; the footer line says what they mean
            cols = [("source / zone", "left"), ("count", "right"), ("smooth", "right"),
                    ("recent", "left"), ("fps", "right"), ("ms", "right"),
                    ("q/skip", "right")]
        else:
            cols = [("source / zone", "left"), ("count", "right"), ("smooth", "right"),
                    ("recent (min-max)", "left"), ("fps now/avg", "right"),
                    ("ms/frame p50/95", "right"), ("queue", "right"), ("skip", "right")]
        cols += [("state", "left")]
        for col, just in cols:
            t.add_column(col, justify=just, no_wrap=True)
        alerts: list[str] = []
        bars: list[RenderableType] = []
        for name, st in self.stats.items():
            with st.lock:
                hist = list(st.history)
            state = st.state
            if st.reconnects:
                state += f" ({st.reconnects} reconnects)"
            if st.corrupt:
                state += f" {st.corrupt} corrupt"
            state_cell: Text | str = state[:state_w]
            if st.error:
                state_cell = Text(st.error[:state_w], style="red")
            recent = hist[-spark_w:]
            scale = f" {min(recent):.0f}-{max(recent):.0f}" if recent else ""
            qs = ([f"{st.queue_depth}/{st.skipped}"] if narrow
                  else [str(st.queue_depth), str(st.skipped)])
            t.add_row(
                Text(short_name(name, name_w), style="bold"), f"{st.count:.1f}",
                f"{st.smoothed:.1f}", sparkline(hist, spark_w) + scale,
                f"{st.fps:.0f}/{st.overall_fps:.0f}",
                f"{st.latency_pct(50):.0f}/{st.latency_pct(95):.0f}", *qs, state_cell,
            )  # fmt: skip
            active = {k[0] for k in st.active_alerts}
            for z, v in st.zones.items():
                style = "bold red" if z in active else ""
                t.add_row(Text(f"  {short_name(z, name_w - 2)}", style=style), f"{v:.1f}",
                          f"{st.zones_smoothed.get(z, v):.1f}", "", "", "", *([""] * len(qs)),
                          Text("ALERT", style="bold red") if z in active else "")
            alerts += [ev.describe() for ev in st.active_alerts.values()]
            if st.total and not st.live:
                done = min(st.total, max(0, st.last_index + 1))
                eta = _eta(st)
                row = Table.grid(padding=(0, 1))
                row.add_row(Text(short_name(name, name_w), style="dim"),
                            ProgressBar(total=st.total, completed=done,
                                        width=24 if narrow else 40),
                            f"{done}/{st.total}", f"ETA {eta}" if eta else "")
                bars.append(row)
        parts: list[RenderableType] = [t, *bars]
        parts.append(Text("fps: counted frames per second, now / since the start; ms: engine "
                          "time per frame p50/p95 (a frame also waits in the queue and its "
                          "batch)" + ("; q/skip: frames queued / skipped" if narrow else ""),
                          style="dim"))
        if alerts:
            parts.append(Text("\n".join(alerts), style="bold red"))
        return Group(*parts)


def render_text(dashboard: Dashboard, width: int = 120) -> str:
    """The dashboard rendered to plain text.

    Example:
        >>> render_text(Dashboard({}), width=60).startswith("streamcount")
        True
    """
    con = Console(file=io.StringIO(), width=width, record=True, color_system=None,
                  force_terminal=False)
    con.print(dashboard.render(width))
    return con.export_text()
