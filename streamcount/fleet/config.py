"""The fleet file: which sources, with which zones, into which sinks, on which cluster.

A fleet file is YAML (or JSON)::

    address: null          # Ray address (auto, host:6379, ray://head:10001); none: local instance
    model: crowd
    batch: 8               # frames per engine call, gathered across the streams of a node
    output: fleet-out      # one CSV (and JSONL) per source here
    jsonl: true
    defaults:              # applied to every source unless it says otherwise
      smooth: ema:0.3
    sources:
      - source: rtsp://user:pass@10.0.0.5/stream1
        name: entrance
        zones: zones/entrance.json
        mode: live
      - source: recordings/tuesday.mp4
        stride: 2

Relative paths (sources, zones, output, events) are relative to the fleet file's folder. Sources
are opened on the node their actor runs on, so files must exist there (shared storage or a copy
per node); URLs work anywhere.

Example:
    >>> cfg = FleetConfig.from_dict({"sources": [{"source": "a.mp4"}, {"source": "0"}]})
    >>> [s.name for s in cfg.sources], cfg.sources[1].mode
    (['a.mp4', '0'], None)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streamcount import defaults
from streamcount.errors import InputError
from streamcount.settings import check_types, within
from streamcount.sources import classify, redact, slug

_SOURCE_KEYS = {"source", "name", "zones", "smooth", "mode", "stride", "fps", "max_fps",
                "max_frames"}


@dataclass
class FleetSource:
    """One source of the fleet.

    Attributes:
        source: Webcam index, file, folder, glob or URL (as for ``run``).
        name: Display and file name (default: the redacted source).
        zones: Zone/ROI file for this source.
        smooth: Smoothing spec.
        mode: ``live`` (newest frame wins), ``file`` (every frame) or None (by source type).
        stride: Process every Nth frame.
        fps: Frame rate for sources that have none.
        max_fps: At most this many frames per second (live: drop the rest; file: pace).
        max_frames: Stop after this many frames.
    """

    source: str
    name: str = ""
    zones: Path | None = None
    smooth: str = defaults.SMOOTH
    mode: str | None = None
    stride: int = defaults.STRIDE
    fps: float | None = None
    max_fps: float | None = None
    max_frames: int | None = None

    @property
    def file_stem(self) -> str:
        """The name used for this source's output files."""
        return slug(self.name)


@dataclass
class FleetConfig:
    """Everything ``streamcount fleet`` does.

    Attributes:
        sources: The sources.
        address: Ray cluster address; None starts a local instance in-process.
        num_cpus: CPUs of the local instance (None: all).
        model: Model name or path (every inference actor loads it; paths must exist on each
            node).
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt`` for the inference actors.
        threads: Engine threads per inference actor (0: ONNX Runtime's default).
        batch: Most frames per engine call, gathered across the streams of one actor.
        inflight: Batches requested ahead per source (hides decode and transfer latency).
        output: Folder for the per-source files.
        outputs: The files written per source, ``OUTPUT/<source><suffix>``: keys of
            :func:`streamcount.sinks.table.fleet_outputs` (``csv``, ``jsonl``), switched on
            and off in the file as ``csv: true``, ``jsonl: false``.
        events: Alert event log (JSONL) for the whole fleet.
        metrics_port: Driver Prometheus endpoint with per-source counts (None: off).
        metrics_host: Address the endpoints bind (127.0.0.1 unless told otherwise).
        node_metrics_port: Per-node Prometheus endpoint served by each inference actor on its
            node (engine batches, frames, latency; None: off).
        source_cpus: CPUs Ray reserves for each source actor (decoding).
        inference_cpus: CPUs Ray reserves for each CPU inference actor.
        gpus_per_inference: GPUs per inference actor on GPU nodes (one actor per GPU).
        max_restarts: How often Ray restarts a dead actor before its sources are given up.
        prefetch: Frames a file source decodes ahead.
    """

    sources: list[FleetSource] = field(default_factory=list)
    address: str | None = None
    num_cpus: int | None = None
    model: str = defaults.MODEL
    device: str = defaults.DEVICE
    threads: int = defaults.THREADS
    batch: int = defaults.BATCH
    inflight: int = 2
    output: Path = Path("fleet-out")
    outputs: tuple[str, ...] = ("csv",)
    events: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = defaults.METRICS_HOST
    node_metrics_port: int | None = None
    source_cpus: float = 0.25
    inference_cpus: float = 1.0
    gpus_per_inference: float = 1.0
    max_restarts: int = 5
    prefetch: int = 16

    @classmethod
    def from_dict(cls, data: Any, base: Path | None = None, where: str = "fleet file"
                  ) -> FleetConfig:
        """Build from parsed YAML/JSON; relative paths are taken from ``base``.

        Raises:
            InputError: one line naming the bad key or value.
        """
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a mapping with a 'sources' list at the top")
        base = base or Path(".")
        from streamcount.sinks import table

        files = table.fleet_outputs()
        known = ({f.name for f in fields(cls)} - {"outputs"}) | {"defaults"} | set(files)
        unknown = sorted(set(data) - known)
        if unknown:
            if unknown[0] in table.outputs():
                raise InputError(f"{where}: {unknown[0]!r} is not written by a fleet (it cannot "
                                 f"resume after a restart); fleet outputs: {', '.join(files)}")
            raise InputError(f"{where}: unknown key {unknown[0]!r}; known: "
                             f"{', '.join(sorted(known))}")
        on = dict.fromkeys(cls.outputs, True)
        for key in files:
            if key in data:
                if not isinstance(data[key], bool):
                    raise InputError(f"{where}: {key} must be true or false, got {data[key]!r}")
                on[key] = data[key]
        raw_sources = data.get("sources")
        if not isinstance(raw_sources, list) or not raw_sources:
            raise InputError(f"{where}: 'sources' must be a non-empty list of sources")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict) or set(defaults) - (_SOURCE_KEYS - {"source", "name"}):
            raise InputError(f"{where}: 'defaults' may only set "
                             f"{', '.join(sorted(_SOURCE_KEYS - {'source', 'name'}))}")
        sources = [_source(raw, defaults, base, f"{where}: source {i + 1}")
                   for i, raw in enumerate(raw_sources)]
        seen: set[str] = set()
        for s in sources:
            if s.file_stem in seen:
                raise InputError(f"{where}: two sources are named {s.name!r}; give each a "
                                 "distinct 'name'")
            seen.add(s.file_stem)
        kw: dict[str, Any] = {k: v for k, v in data.items()
                              if k not in ("sources", "defaults", *files)}
        kw["outputs"] = tuple(k for k in files if on.get(k))
        for key in ("output", "events"):
            if kw.get(key) is not None:
                kw[key] = _path(kw[key], base)
        cfg = cls(sources=sources, **kw)
        cfg.validate(where)
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> FleetConfig:
        """Read a fleet file (YAML or JSON).

        Raises:
            InputError: missing, unreadable or invalid file (one line).
        """
        from streamcount.safeyaml import load_yaml

        p = Path(path)
        if not p.is_file():
            raise InputError(f"fleet file not found: {p}; see `streamcount fleet --help` for "
                             "the format")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read fleet file {p}: {exc}") from None
        data = load_yaml(text, f"fleet file {p}")
        return cls.from_dict(data, p.parent, str(p))

    def validate(self, where: str = "fleet file") -> None:
        """Raise :class:`InputError` for values of the wrong type or impossible ones."""
        check_types(self, f"{where}: a setting")
        checks = [
            (self.batch >= 1, "batch must be >= 1"),
            (self.inflight >= 1, "inflight must be >= 1"),
            (self.max_restarts >= 0, "max_restarts must be >= 0"),
            (self.source_cpus >= 0 and self.inference_cpus >= 0, "CPU counts must be >= 0"),
            (self.prefetch >= 1, "prefetch must be >= 1"),
            (self.num_cpus is None or 1 <= self.num_cpus <= 4096,
             f"num_cpus must be from 1 to 4096 (leave it out for all), got {self.num_cpus}"),
            (all(v is None or 0 <= v <= 65535 for v in (self.metrics_port,
                                                         self.node_metrics_port)),
             "metrics_port and node_metrics_port must be from 0 to 65535"),
            (0 <= self.threads <= 1024, f"threads must be 0 (one per core) to 1024, got "
                                        f"{self.threads}"),
            (bool(self.outputs), "every output is off (csv, jsonl): nothing would be written"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"{where}: {msg}")


def _path(value: Any, base: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def _source(raw: Any, defaults: dict[str, Any], base: Path, where: str) -> FleetSource:
    if isinstance(raw, (str, int)):
        raw = {"source": str(raw)}
    if not isinstance(raw, dict) or "source" not in raw:
        raise InputError(f"{where}: give it as a string or a mapping with a 'source' key")
    unknown = sorted(set(raw) - _SOURCE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; known: "
                         f"{', '.join(sorted(_SOURCE_KEYS))}")
    merged = {**defaults, **raw}
    spec = str(merged["source"])
    if classify(spec) in ("video", "images") and not Path(spec).expanduser().is_absolute():
        spec = str(base / Path(spec).expanduser())
    merged["source"] = spec
    merged["name"] = str(merged.get("name") or redact(str(raw["source"])))
    if merged.get("zones") is not None:
        merged["zones"] = _path(merged["zones"], base)
    mode = merged.get("mode")
    if mode not in (None, "live", "file"):
        raise InputError(f"{where}: mode must be live or file, got {mode!r}")
    src = FleetSource(**merged)
    check_types(src, f"{where}: a setting")
    if src.stride < 1:
        raise InputError(f"{where}: stride must be >= 1, got {src.stride}")
    for key in ("fps", "max_fps"):
        v = getattr(src, key)
        if v is not None and not within(v, 0, 10000, above=True):
            raise InputError(f"{where}: {key} must be above 0 and at most 10000, got {v}")
    if src.max_frames is not None and src.max_frames < 1:
        raise InputError(f"{where}: max_frames must be >= 1, got {src.max_frames}")
    return src
