"""Threshold alerts per zone: a count above or below a value for N seconds.

An alert *starts* when its condition has held for ``seconds`` of stream time and *ends* when
the condition has stopped holding for ``clear`` seconds (1 by default: a count hovering at the
threshold does not flap). Events go to the dashboard, an optional JSONL event log
(``--events``) and an optional command (``--on-alert``), run with the event as environment
variables (``STREAMCOUNT_EVENT``, ``STREAMCOUNT_SOURCE``, ``STREAMCOUNT_ZONE``,
``STREAMCOUNT_COUNT``, ``STREAMCOUNT_THRESHOLD``, ``STREAMCOUNT_RULE``, ``STREAMCOUNT_TIME``).

Example:
    >>> from streamcount.zones import AlertRule
    >>> mon = AlertMonitor("cam", {"door": [AlertRule(above=5, seconds=2)]})
    >>> [e.event for t in (0, 1, 2, 3) for e in mon.update({"door": 9.0}, float(t), 0.0)]
    ['start']
    >>> [e.event for t in (4.0, 4.5, 5.0) for e in mon.update({"door": 1.0}, t, 0.0)]
    ['end']
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from streamcount.errors import InputError, OutputError
from streamcount.zones import AlertRule

logger = logging.getLogger(__name__)


@dataclass
class AlertEvent:
    """One alert transition.

    Attributes:
        event: ``start`` or ``end``.
        source: Source name (redacted).
        zone: Zone name (``total`` for the whole frame).
        rule: ``above`` or ``below``.
        threshold: The rule's value.
        seconds: How long the condition must hold.
        count: The count at the transition.
        stream_time: Stream seconds of the frame that caused it.
        wall_time: Unix time of that frame.
    """

    event: str
    source: str
    zone: str
    rule: str
    threshold: float
    seconds: float
    count: float
    stream_time: float
    wall_time: float

    def describe(self) -> str:
        """One line for logs and the dashboard."""
        verb = "ALERT" if self.event == "start" else "cleared"
        return (f"{verb} {self.source}/{self.zone}: count {self.count:.1f} {self.rule} "
                f"{self.threshold:g} for {self.seconds:g}s")


class _RuleState:
    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.since: float | None = None
        self.clear_since: float | None = None
        self.active = False


class AlertMonitor:
    """Tracks the alert rules of one source's zones.

    Args:
        source: Source name.
        rules: Zone name -> rules.
    """

    def __init__(self, source: str, rules: dict[str, list[AlertRule]]) -> None:
        self.source = source
        self.states = {z: [_RuleState(r) for r in rs] for z, rs in rules.items() if rs}

    def update(self, counts: dict[str, float], stream_time: float,
               wall_time: float) -> list[AlertEvent]:
        """Feed one frame's (smoothed) zone counts; return the transitions it caused."""
        events: list[AlertEvent] = []
        for zone, states in self.states.items():
            if zone not in counts:
                continue
            value = counts[zone]
            for st in states:
                r = st.rule
                kind, thr = ("above", r.above) if r.above is not None else ("below", r.below)
                assert thr is not None
                hit = value > thr if kind == "above" else value < thr
                if r.above is not None and r.below is not None:  # a band: outside it
                    hit = value > r.above or value < r.below
                if hit:
                    st.clear_since = None
                    if st.since is None:
                        st.since = stream_time
                    if not st.active and stream_time - st.since >= r.seconds:
                        st.active = True
                        ev = AlertEvent("start", self.source, zone, kind, float(thr), r.seconds,
                                        value, stream_time, wall_time)
                        events.append(ev)
                else:
                    st.since = None
                    if not st.active:
                        continue
                    if st.clear_since is None:
                        st.clear_since = stream_time
                    if stream_time - st.clear_since >= r.clear:
                        st.active = False
                        st.clear_since = None
                        events.append(AlertEvent("end", self.source, zone, kind, float(thr),
                                                 r.seconds, value, stream_time, wall_time))
        return events


class EventLog:
    """Appends alert events to a JSONL file, flushed per event.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "ev.jsonl"
        >>> with EventLog(p) as log:
        ...     log.write(AlertEvent("start", "a", "z", "above", 1, 0, 2, 0, 0))
        >>> p.read_text().count("\\n")
        1
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write event log {self.path}: {exc.strerror}") from None

    def write(self, event: AlertEvent) -> None:
        """Append one event."""
        self.fh.write(json.dumps(asdict(event)) + "\n")
        self.fh.flush()

    def close(self) -> None:
        """Close the file."""
        self.fh.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AlertCommand:
    """Runs ``--on-alert CMD`` for each event, without a shell unless ``shell=True``.

    The command runs in the background (never blocking the pipeline); its exit status is
    logged. The event is passed as ``STREAMCOUNT_*`` environment variables. At most
    ``max_running`` commands run at once (further events are logged and not run); at shutdown
    all are waited for together, ``timeout`` seconds in all, then killed.
    """

    def __init__(self, command: str, shell: bool = False, max_running: int = 4) -> None:
        self.command = command
        self.shell = shell
        self.max_running = max_running
        self.dropped = 0
        try:
            self.argv = command if shell else shlex.split(command)
        except ValueError as exc:
            raise InputError(f"--on-alert command cannot be parsed: {exc}") from None
        if not self.argv:
            raise InputError("--on-alert command is empty")
        self.running: list[subprocess.Popen] = []

    @staticmethod
    def environment(event: AlertEvent) -> dict[str, str]:
        """The ``STREAMCOUNT_*`` variables of an event."""
        return {
            "STREAMCOUNT_EVENT": event.event, "STREAMCOUNT_SOURCE": event.source,
            "STREAMCOUNT_ZONE": event.zone, "STREAMCOUNT_RULE": event.rule,
            "STREAMCOUNT_THRESHOLD": f"{event.threshold:g}",
            "STREAMCOUNT_SECONDS": f"{event.seconds:g}", "STREAMCOUNT_COUNT": f"{event.count:.3f}",
            "STREAMCOUNT_TIME": f"{event.stream_time:.3f}",
            "STREAMCOUNT_WALL_TIME": f"{event.wall_time:.3f}",
            "STREAMCOUNT_MESSAGE": event.describe(),
        }  # fmt: skip

    def __call__(self, event: AlertEvent) -> None:
        """Start the command for ``event``; reap finished ones."""
        self._reap()
        if len(self.running) >= self.max_running:
            self.dropped += 1
            logger.warning("--on-alert: %d commands still running; not run for: %s",
                           len(self.running), event.describe())
            return
        env = {**os.environ, **self.environment(event)}
        try:
            proc = subprocess.Popen(self.argv, shell=self.shell, env=env,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            logger.error("--on-alert command failed to start: %s", exc.strerror)
            return
        self.running.append(proc)

    def _reap(self) -> None:
        for p in list(self.running):
            rc = p.poll()
            if rc is not None:
                self.running.remove(p)
                if rc:
                    logger.warning("--on-alert command exited with status %d", rc)

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the commands still running, ``timeout`` seconds for all together, then
        kill the rest (so shutdown never takes longer than that)."""
        import time

        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            self._reap()
            if self.running:
                time.sleep(0.05)
        for p in self.running:
            logger.warning("--on-alert command still running after %.0f s; killed", timeout)
            p.kill()
        for p in self.running:
            p.wait()
        self.running.clear()
