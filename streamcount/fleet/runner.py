"""The fleet driver: places actors, moves frames between them, writes rows exactly once.

Data flows one way, as in ``run``: a source actor decodes (on some node), the driver hands the
*reference* to its frames to the inference actor of that node (the pixels go from actor to actor
through Ray's object store, never through the driver), and the inference actor returns only
numbers: count and zone counts per frame. The driver smooths, raises alerts and writes rows.

Per source the driver keeps ``inflight`` requests in flight and consumes them in order, so rows
leave in frame order. When a request fails because an actor died, Ray restarts the actor
(``max_restarts``) and the driver reopens the source at the ledger's resume point; see
:mod:`streamcount.fleet.ledger` for the exactly-once argument.

Example:
    >>> from streamcount.fleet.config import FleetConfig  # doctest: +SKIP
    >>> runner = FleetRunner(FleetConfig.load("fleet.yaml"))  # doctest: +SKIP
    >>> runner.run()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from streamcount.analyzer import Analyzer
from streamcount.errors import InputError, SourceError, StreamcountError, require
from streamcount.fleet.config import FleetConfig, FleetSource
from streamcount.fleet.ledger import Ledger
from streamcount.frames import Frame
from streamcount.sinks import Sink, table, write_all
from streamcount.smoothing import parse_smoothing
from streamcount.sources import SourceOptions
from streamcount.stats import SourceStats
from streamcount.zones import ZoneSet, read_zone_file

if TYPE_CHECKING:
    from streamcount.alerts import EventLog

logger = logging.getLogger(__name__)

_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


@dataclass
class Lane:
    """One source as the driver sees it."""

    spec: FleetSource
    actor: Any
    engine: Any
    zones: ZoneSet
    zone_data: dict[str, Any] | None
    stats: SourceStats
    analyzer: Analyzer
    sinks: list[Sink] = field(default_factory=list)
    pending: deque = field(default_factory=deque)
    request: int = 1
    ended: bool = False
    failed: bool = False
    restarts: int = 0
    retry_at: float = 0.0
    host: str = ""

    @property
    def active(self) -> bool:
        """Still producing or draining rows."""
        return not self.failed and (not self.ended or bool(self.pending))


@dataclass
class EngineInfo:
    """One inference actor and what it last reported."""

    actor: Any
    node: str
    host: str = ""
    health: dict[str, Any] = field(default_factory=dict)
    alive: bool = True
    probe: Any = None


def unwrap(exc: BaseException) -> str:
    """The one-line message of an error raised inside an actor (or of Ray's own error)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, StreamcountError):
        return cause.message
    if cause is not None:
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


#: The logger of Ray's notice that a new local instance uses token authentication.
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_RAY_AUTH_ENABLED = "Token authentication is enabled for this Ray cluster"


class _DropAuthEnabledNotice(logging.Filter):
    """Drops Ray's line that token authentication is on (the safe default, logged at debug
    instead); its warning that authentication is *off* still gets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith(_RAY_AUTH_ENABLED):
            logger.debug("local Ray instance with token authentication")
            return False
        return True


def _quiet_token_auth_notice() -> None:
    ray_logger = logging.getLogger(_RAY_AUTH_LOGGER)
    if not any(isinstance(f, _DropAuthEnabledNotice) for f in ray_logger.filters):
        ray_logger.addFilter(_DropAuthEnabledNotice())


class FleetRunner:
    """Runs a fleet file on a Ray cluster (or a local instance).

    Args:
        cfg: The fleet.
        resume: Append to existing per-source files and continue file sources after their last
            row (the ledger is read back from the files).
    """

    def __init__(self, cfg: FleetConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.resume = resume
        self.ledger = Ledger()
        self.lanes: dict[str, Lane] = {}
        self.engines: list[EngineInfo] = []
        self.shared_sinks: list[Sink] = []
        self.events: EventLog | None = None
        self.stopping = False
        self.started_ray = False
        self.started = 0.0
        self.finished = 0.0
        self.ray: Any = None

    # -- set-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to (or start) Ray, place the actors, open sources and sinks."""
        ray: Any = require("ray", "cluster")  # before anything is written
        self.ray = ray
        for s in self.cfg.sources:
            parse_smoothing(s.smooth)
        zones = {s.name: self._zones(s) for s in self.cfg.sources}
        self._prepare_output()
        self._init_ray(ray)
        self.started = time.monotonic()
        self._place_engines(ray)
        self._place_sources(ray, zones)  # created while the engines load their models
        self._open_sinks()
        opened = [(lane, lane.actor.open.remote(self.ledger.resume_at(name)))
                  for name, lane in self.lanes.items()]
        self._check_engines(ray)
        for lane, ref in opened:
            try:
                info = ray.get(ref, timeout=120)
                lane.stats.total, lane.stats.fps_nominal = info["total"], info["fps"] or 0.0
                lane.stats.live = bool(info["live"])
                lane.stats.state = "ok"
                lane.host = info["host"]
            except Exception as exc:
                self._give_up(lane, unwrap(exc))
        regs = [(lane, lane.engine.register.remote(lane.spec.name, lane.zone_data))
                for lane in self.lanes.values() if not lane.failed]
        for lane, ref in regs:
            try:
                ray.get(ref, timeout=120)
            except Exception as exc:
                self._give_up(lane, unwrap(exc))
        if all(lane.failed for lane in self.lanes.values()):
            last = list(self.lanes.values())[-1]
            raise SourceError(f"every source failed to open; last: {last.spec.name}: "
                              f"{last.stats.error}")

    def _zones(self, s: FleetSource) -> tuple[ZoneSet, dict[str, Any] | None]:
        """The source's zones (validated here, one line on a bad file) and the file's content
        (sent to the inference actor, which builds the same :class:`ZoneSet`)."""
        if s.zones is None:
            return ZoneSet.empty(), None
        data = read_zone_file(s.zones)
        return ZoneSet.from_dict(data, source=str(s.zones)), data

    def _prepare_output(self) -> None:
        out = self.cfg.output
        if out.exists() and not out.is_dir():
            raise InputError(f"fleet output {out} is a file; give a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from streamcount.errors import OutputError

            raise OutputError(f"cannot create fleet output folder {out}: {exc.strerror}") from None
        if not self.resume:
            return
        for s in self.cfg.sources:
            last = -1
            for key in self.cfg.outputs:
                output = table.fleet_outputs()[key]
                assert output.recover is not None
                idx = output.recover(out / f"{s.file_stem}{output.suffix}")
                last = idx if last == -1 else min(last, idx)  # the file that is behind wins
            if last >= 0:
                self.ledger.commit(s.name, last)
                logger.info("%s: resuming after frame %d", s.name, last)

    def _init_ray(self, ray: Any) -> None:
        if ray.is_initialized():
            return
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.WARNING, "configure_logging": False}
        if self.cfg.address is None:
            kw["num_cpus"] = self.cfg.num_cpus
            _quiet_token_auth_notice()
        try:
            ray.init(address=self.cfg.address, **kw)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            where = self.cfg.address or "a local instance"
            raise SourceError(f"cannot reach the Ray cluster at {where}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                              "start it with `ray start --head` or fix 'address'") from None
        self.started_ray = True

    def _place_engines(self, ray: Any) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from streamcount.fleet.workers import InferenceWorker

        remote = ray.remote(InferenceWorker)
        conc = 4 + self.cfg.inflight * len(self.cfg.sources)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        for node in nodes:
            res = node.get("Resources", {})
            gpus = 0 if self.cfg.device == "cpu" else int(res.get("GPU", 0) // max(
                self.cfg.gpus_per_inference, 1e-9))
            cpus = float(res.get("CPU", 0))
            if not gpus and cpus <= 0:
                continue
            for i in range(max(1, gpus)):
                opts: dict[str, Any] = {
                    "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"],
                                                                          soft=False),
                    "max_restarts": self.cfg.max_restarts, "max_concurrency": conc}
                if gpus:
                    opts.update(num_gpus=self.cfg.gpus_per_inference, num_cpus=0)
                else:
                    opts["num_cpus"] = min(self.cfg.inference_cpus, cpus)
                port = None if self.cfg.node_metrics_port is None else \
                    self.cfg.node_metrics_port + i
                actor = remote.options(**opts).remote(
                    self.cfg.model, self.cfg.device, self.cfg.threads, self.cfg.batch, port,
                    self.cfg.metrics_host)
                self.engines.append(EngineInfo(actor, node["NodeID"],
                                               node.get("NodeManagerHostname", "")))
        if not self.engines:
            raise SourceError("the Ray cluster has no node with CPUs or GPUs to count on")

    def _check_engines(self, ray: Any) -> None:
        """Wait until every inference actor has loaded the model (one line when it cannot)."""
        try:
            infos = ray.get([e.actor.health.remote() for e in self.engines], timeout=300)
        except Exception as exc:
            self._kill_all()
            msg = unwrap(exc)
            cause = getattr(exc, "cause", None)  # Ray's wrapper of an error raised in the actor
            raise (cause if isinstance(cause, StreamcountError)
                   else SourceError(f"inference actors did not start: {msg}")) from None
        for e, info in zip(self.engines, infos, strict=True):
            e.health, e.host = info, info["host"]
        logger.info("%d inference actor(s): %s", len(self.engines),
                    ", ".join(f"{e.host}/{e.health['provider']}" for e in self.engines))

    def _place_sources(self, ray: Any,
                       zones: dict[str, tuple[ZoneSet, dict[str, Any] | None]]) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from streamcount.fleet.workers import SourceWorker

        remote = ray.remote(SourceWorker)
        per_engine = math.ceil(len(self.cfg.sources) / len(self.engines))
        request = max(1, math.ceil(self.cfg.batch / per_engine))
        for k, s in enumerate(self.cfg.sources):
            eng = self.engines[k % len(self.engines)]
            opts = SourceOptions(mode=s.mode, stride=s.stride, fps=s.fps)
            actor = remote.options(
                num_cpus=self.cfg.source_cpus, max_restarts=self.cfg.max_restarts,
                scheduling_strategy=NodeAffinitySchedulingStrategy(eng.node, soft=True),
            ).remote(s.source, s.name, opts, self.cfg.prefetch, s.max_fps, s.max_frames)
            zs, data = zones[s.name]
            stats = SourceStats(s.name, s.mode == "live")
            analyzer = Analyzer(s.name, zs, parse_smoothing(s.smooth))
            self.lanes[s.name] = Lane(s, actor, eng.actor, zs, data, stats, analyzer,
                                      request=request)

    def _open_sinks(self) -> None:
        out = self.cfg.output
        files = table.fleet_outputs()
        for lane in self.lanes.values():
            stem = lane.spec.file_stem
            ctx = table.SinkContext(lane.zones.names, resume=self.resume)
            paths = {key: out / f"{stem}{files[key].suffix}" for key in self.cfg.outputs}
            lane.sinks += table.build(paths, ctx)
            for sink in lane.sinks:
                sink.open()
        if self.cfg.metrics_port is not None:
            from streamcount.sinks.metrics import METRICS_TOKEN_ENV, MetricsSink

            m = MetricsSink(self.cfg.metrics_port, self.cfg.metrics_host, self.stats_map,
                            token=os.environ.get(METRICS_TOKEN_ENV))
            m.open()
            self.shared_sinks.append(m)
        if self.cfg.events is not None:
            from streamcount.alerts import EventLog

            self.events = EventLog(self.cfg.events)
            self.events.__enter__()

    def stats_map(self) -> dict[str, SourceStats]:
        """Source name -> live statistics (for the dashboard and metrics)."""
        return {name: lane.stats for name, lane in self.lanes.items()}

    # -- the loop -------------------------------------------------------------------------
    def step(self, timeout: float = 0.25) -> bool:
        """Submit requests, consume whatever is ready (in order per source); False when done."""
        ray = self.ray
        now = time.monotonic()
        for lane in self.lanes.values():
            if lane.retry_at and now >= lane.retry_at:
                self._reopen(lane)
            self._fill(lane)
        self._poll_health()
        heads = {lane.pending[0]: lane for lane in self.lanes.values() if lane.pending}
        if not heads:
            waiting = any(lane.retry_at for lane in self.lanes.values() if not lane.failed)
            if waiting:
                time.sleep(min(timeout, 0.1))
            return waiting
        refs = list(heads)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in ready:
            lane = heads[ref]
            lane.pending.popleft()
            try:
                out = ray.get(ref)
            except Exception as exc:  # an actor died or raised: recover this source only
                self._recover(lane, exc)
                continue
            self._consume(lane, out)
        return any(lane.active or lane.retry_at for lane in self.lanes.values())

    def _fill(self, lane: Lane) -> None:
        if lane.failed or lane.ended or lane.retry_at or self.stopping:
            return
        n = 1 if lane.stats.live else lane.request
        while len(lane.pending) < self.cfg.inflight:
            frames = lane.actor.next.remote(n, 0.5)
            lane.pending.append(lane.engine.count.remote(lane.spec.name, frames))

    def _consume(self, lane: Lane, out: dict[str, Any]) -> None:
        st = lane.stats
        st.skipped += int(out.get("dropped", 0))
        st.corrupt, st.reconnects = int(out.get("corrupt", 0)), int(out.get("reconnects", 0))
        if out.get("state") and out["state"] not in ("ended", "closed"):
            st.state = out["state"] + (f" ({lane.restarts} restarts)" if lane.restarts else "")
        name = lane.spec.name
        for idx, stime, wtime, count, zc, ms in out.get("rows", []):
            if not self.ledger.fresh(name, idx):
                continue  # already written before a restart: at most once
            frame = Frame(name, idx, stime, wtime, _NO_IMAGE)
            res = lane.analyzer.update(frame, count, zc, ms)
            st.tick(res, time.monotonic())
            write_all(lane.sinks + self.shared_sinks, res)
            self.ledger.commit(name, idx)
            st.track_alerts(res.alerts)
            if self.events is not None:
                for ev in res.alerts:
                    self.events.write(ev)
            st.written(res)
        if out.get("ended") and not lane.ended:
            lane.ended = True
            err = out.get("error")
            if err:
                st.error = err
                st.state = "failed"
                logger.error("%s: %s", name, err)
            else:
                st.state = "ended"
            st.finished = time.monotonic()

    def _recover(self, lane: Lane, exc: BaseException) -> None:
        """An actor serving ``lane`` died or failed: drop its requests, reopen at the ledger."""
        lane.pending.clear()
        lane.restarts += 1
        msg = unwrap(exc)
        if lane.restarts > self.cfg.max_restarts + 1:
            self._give_up(lane, f"gave up after {lane.restarts - 1} restarts: {msg}")
            return
        logger.warning("%s: %s; resuming at frame %d (restart %d)", lane.spec.name, msg,
                       self.ledger.resume_at(lane.spec.name), lane.restarts)
        lane.stats.state = f"restarting ({lane.restarts})"
        lane.retry_at = time.monotonic()

    def _reopen(self, lane: Lane) -> None:
        ray = self.ray
        try:
            ray.get(lane.engine.register.remote(lane.spec.name, lane.zone_data), timeout=120)
            ray.get(lane.actor.open.remote(self.ledger.resume_at(lane.spec.name)), timeout=120)
        except Exception as exc:
            lane.restarts += 1
            if lane.restarts > self.cfg.max_restarts + 1:
                self._give_up(lane, f"could not reopen: {unwrap(exc)}")
            else:
                lane.retry_at = time.monotonic() + min(10.0, 0.5 * 2 ** lane.restarts)
            return
        lane.retry_at = 0.0
        lane.ended = False
        lane.stats.state = f"ok ({lane.restarts} restarts)"

    def _give_up(self, lane: Lane, msg: str) -> None:
        lane.failed = True
        lane.retry_at = 0.0
        lane.pending.clear()
        lane.stats.error = msg
        lane.stats.state = "failed"
        lane.stats.finished = time.monotonic()
        logger.error("%s: %s; the other sources go on", lane.spec.name, msg)

    def _poll_health(self) -> None:
        ray = self.ray
        for e in self.engines:
            if e.probe is None:
                e.probe = e.actor.health.remote()
                continue
            ready, _ = ray.wait([e.probe], timeout=0)
            if not ready:
                continue
            try:
                e.health, e.alive = ray.get(e.probe), True
            except Exception:
                e.alive = False
            e.probe = None

    def _final_health(self) -> None:
        """Read each live engine's figures once more, after its last batch (the periodic probe
        can be a batch or two behind, and the summary's node rows must add up)."""
        if self.ray is None or not self.engines:
            return
        for e in self.engines:
            if not e.alive:
                continue
            with contextlib.suppress(Exception):  # gone meanwhile: keep the last reading
                e.health = self.ray.get(e.actor.health.remote(), timeout=10)

    # -- control --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop requesting frames; what is in flight is still written."""
        self.stopping = True

    def run(self, on_step: Any = None, drain_s: float = 30.0) -> None:
        """Start, loop until every source ended (or :meth:`stop`), close.

        Args:
            on_step: Called with the runner after every step (dashboard refresh, tests).
            drain_s: After :meth:`stop`, how long in-flight results are still awaited.
        """
        try:
            self.start()
            stop_at = None
            while self.step():
                if on_step is not None:
                    on_step(self)
                if self.stopping:
                    stop_at = stop_at or time.monotonic() + drain_s
                    if time.monotonic() > stop_at:
                        break
        finally:
            self.close()

    def close(self) -> None:
        """Close sinks (rows are already flushed), stop actors, shut Ray down if we started it."""
        self.finished = time.monotonic()
        self._final_health()
        for lane in self.lanes.values():
            for sink in lane.sinks:
                sink.close()
        for sink in self.shared_sinks:
            sink.close()
        if self.events is not None:
            self.events.__exit__(None, None, None)
            self.events = None
        self._kill_all()
        if self.started_ray and self.ray is not None:
            self.ray.shutdown()
            self.started_ray = False

    def _kill_all(self) -> None:
        ray = self.ray
        if ray is None or not ray.is_initialized():
            return
        for actor in [lane.actor for lane in self.lanes.values()] + [
                e.actor for e in self.engines]:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)

    # -- results --------------------------------------------------------------------------
    @property
    def wall_seconds(self) -> float:
        """Seconds from start to close (or now)."""
        return (self.finished or time.monotonic()) - self.started if self.started else 0.0

    def summary(self) -> dict[str, Any]:
        """Per-source and per-node figures of the run."""
        total = sum(lane.stats.processed for lane in self.lanes.values())
        return {
            "frames": total,
            "seconds": round(self.wall_seconds, 3),
            "fps": round(total / self.wall_seconds, 2) if self.wall_seconds else 0.0,
            "sources": {n: {"frames": lane.stats.processed, "last_frame": lane.stats.last_index,
                            "skipped": lane.stats.skipped, "restarts": lane.restarts,
                            "host": lane.host, "state": lane.stats.state,
                            "error": lane.stats.error,
                            "mean_count": round(lane.stats.mean_count, 3)}
                        for n, lane in self.lanes.items()},
            "nodes": [{"host": e.host, **{k: e.health.get(k) for k in (
                "provider", "frames", "calls", "mean_batch", "engine_ms")}}
                for e in self.engines],
        }
