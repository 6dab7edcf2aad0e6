"""The fleet dashboard: the per-source table of ``run`` plus one row per inference actor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, JustifyMethod, RenderableType
from rich.table import Table

from streamcount.dashboard import Dashboard
from streamcount.stats import SourceStats


class FleetDashboard:
    """Sources (as in ``run``) and nodes (host, provider, frames, batch, engine time, health).

    Args:
        stats: Source name -> statistics.
        engines: The runner's :class:`~streamcount.fleet.runner.EngineInfo` list (read live).
        hosts: Source name -> host it decodes on.
        model: Model name for the title.
    """

    def __init__(self, stats: Mapping[str, SourceStats], engines: Sequence[Any],
                 hosts: Mapping[str, str] | None = None, model: str = "") -> None:
        self.sources = Dashboard(stats, "cluster", model, title="streamcount fleet")
        self.engines = engines
        self.hosts = hosts or {}

    def __rich__(self) -> RenderableType:
        return self.render()

    def render(self) -> RenderableType:
        """Both tables as one renderable."""
        t = Table(title="nodes", title_justify="left", pad_edge=False)
        cols: tuple[tuple[str, JustifyMethod], ...] = (
            ("host", "left"), ("provider", "left"), ("frames", "right"), ("fps", "right"),
            ("batch", "right"), ("engine ms", "right"), ("health", "left"))
        for col, just in cols:
            t.add_column(col, justify=just, no_wrap=True)
        for e in self.engines:
            h = e.health
            t.add_row(e.host or e.node[:12], str(h.get("provider", "?")),
                      str(h.get("frames", 0)), f"{h.get('fps', 0.0):.1f}",
                      f"{h.get('mean_batch', 0.0):.1f}", f"{h.get('engine_ms', 0.0):.1f}",
                      "ok" if e.alive else "[red]not answering[/]")
        return Group(self.sources.render(), t)


def render_fleet_text(dash: FleetDashboard, width: int = 120) -> str:
    """The fleet dashboard as plain text (for tests and logs).

    Example:
        >>> render_fleet_text(FleetDashboard({}, []), width=60).startswith("streamcount fleet")
        True
    """
    import io

    from rich.console import Console

    con = Console(file=io.StringIO(), width=width, record=True, color_system=None,
                  force_terminal=False)
    con.print(dash.render())
    return con.export_text()
