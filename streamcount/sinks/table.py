"""The output table: every file output that ``run`` and ``fleet`` write, declared once.

One :class:`Output` per file sink names its flag and fleet-file key, its help text, the extra
it needs and how to build the sink. ``streamcount run`` makes its ``--csv``, ``--jsonl``,
``--video``, ``--plot`` and ``--aggregate-out`` flags from this table and builds its sinks with
:func:`build`; ``streamcount fleet`` accepts the keys of the outputs that can resume
(``csv: true``, ``jsonl: true``) and builds one sink per source with the same :func:`build`.
A new file sink is its class plus one entry in :func:`outputs`.

Example:
    >>> sorted(outputs())
    ['aggregate_out', 'csv', 'jsonl', 'plot', 'video']
    >>> sorted(fleet_outputs())
    ['csv', 'jsonl']
    >>> outputs()["csv"].flag
    '--csv'
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamcount.sinks import Sink


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need to know beyond its path.

    Attributes:
        zones: Zone names (a column pair each in the CSV).
        sources: Source name -> (file-name slug, output frame rate), for per-source files.
        window_s: Aggregation window in seconds (``--aggregate``).
        resume: Append to existing files instead of replacing them (a resumed fleet).
    """

    zones: Sequence[str] = ()
    sources: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    window_s: float | None = None
    resume: bool = False


@dataclass(frozen=True)
class Output:
    """One kind of file output.

    Attributes:
        key: The option's name: ``--csv`` on ``run``, ``csv: true`` in a fleet file.
        what: What the file is, for messages (``"CSV"``).
        help: Help text of the flag.
        metavar: Placeholder of the flag's value.
        build: Makes the sink for a path.
        suffix: File suffix of the fleet's per-source files.
        stdout: The output may go to standard output (``-``).
        extra: ``(module, extra)`` that must be installed (``("matplotlib", "plot")``).
        recover: Reads the last frame index a file holds (-1: none): what makes an output
            resumable, and so offered in fleet files (their rows are written at most once
            across restarts).
        per_source: ``run`` with several sources writes one file per source,
            ``PATH_<source>`` (:func:`streamcount.sinks.suffixed`), not one shared file.
    """

    key: str
    what: str
    help: str
    metavar: str
    build: Callable[[Path, SinkContext], Sink]
    suffix: str = ""
    stdout: bool = False
    extra: tuple[str, str] | None = None
    recover: Callable[[Path], int] | None = None
    per_source: bool = False

    @property
    def flag(self) -> str:
        """The ``run`` flag (``--aggregate-out``)."""
        return "--" + self.key.replace("_", "-")


def _csv(path: Path, ctx: SinkContext) -> Sink:
    from streamcount.sinks.csv import CsvSink

    return CsvSink(path, list(ctx.zones), ctx.resume)


def _jsonl(path: Path, ctx: SinkContext) -> Sink:
    from streamcount.sinks.jsonl import JsonlSink

    return JsonlSink(path, ctx.resume)


def _video(path: Path, ctx: SinkContext) -> Sink:
    from streamcount.sinks.video import VideoSink

    return VideoSink(path, dict(ctx.sources))


def _plot(path: Path, ctx: SinkContext) -> Sink:
    from streamcount.sinks.plot import PlotSink

    return PlotSink(path)


def _aggregate(path: Path, ctx: SinkContext) -> Sink:
    from streamcount.defaults import AGGREGATE_WINDOW
    from streamcount.sinks.aggregate import AggregateSink, parse_duration

    return AggregateSink(path, ctx.window_s or parse_duration(AGGREGATE_WINDOW))


def _recover(path: Path) -> int:
    from streamcount.fleet.ledger import recover

    return recover(path)


@functools.cache
def outputs() -> dict[str, Output]:
    """Every file output, by key, in the order of ``run --help``."""
    table = [
        Output("csv", "CSV", "one row per processed frame", "FILE", _csv, ".csv",
               stdout=True, recover=_recover),
        Output("jsonl", "JSONL", "one JSON object per processed frame", "FILE", _jsonl,
               ".jsonl", stdout=True, recover=_recover),
        Output("video", "video", "annotated video (one per source: OUT_<source>.mp4)", "OUT",
               _video, ".mp4", per_source=True),
        Output("aggregate_out", "aggregate", "CSV of min/mean/max per --aggregate window",
               "FILE", _aggregate, "_aggregate.csv", stdout=True),
        Output("plot", "plot", "count over time (needs [plot] extra)", "PNG", _plot, ".png",
               extra=("matplotlib", "plot")),
    ]
    return {o.key: o for o in table}


def fleet_outputs() -> dict[str, Output]:
    """The outputs a fleet file may switch on: those that can resume."""
    return {k: o for k, o in outputs().items() if o.recover is not None}


def add_flags(group: argparse._ArgumentGroup) -> None:
    """Add one ``--KEY PATH`` flag per output to ``run``'s argument group."""
    for o in outputs().values():
        group.add_argument(o.flag, dest=o.key, type=Path, metavar=o.metavar, help=o.help)


def build(paths: Mapping[str, Path | None], ctx: SinkContext) -> list[Sink]:
    """The sinks for the outputs that have a path, in table order (not opened yet)."""
    chosen = {k: p for k, p in paths.items() if p is not None}
    return [o.build(Path(chosen[k]), ctx) for k, o in outputs().items() if k in chosen]


__all__ = ["Output", "SinkContext", "add_flags", "build", "fleet_outputs", "outputs"]
