"""Defaults shared by the ``run`` and ``fleet`` commands, fleet files and the library's configs.

Each default is declared here once; the ``run`` flags, :class:`~streamcount.commands.run.RunConfig`,
:class:`~streamcount.pipeline.PipelineConfig`, :class:`~streamcount.sources.SourceOptions`, the
engine and :class:`~streamcount.fleet.config.FleetConfig` refer to these names. The module
imports nothing, so reading it costs nothing.

Example:
    >>> from streamcount import defaults
    >>> defaults.MODEL, defaults.SMOOTH
    ('crowd', 'ema:0.3')
"""

#: The bundled model used when none is named.
MODEL = "crowd"
#: Execution provider choice: ``auto`` (TensorRT, CUDA, then CPU), ``cpu``, ``cuda``, ``tensorrt``.
DEVICE = "auto"
#: Inference threads (0: one per core).
THREADS = 0
#: Engine threads for the per-frame work around the model in a batch (0: one per core, <= 8).
HOST_THREADS = 0
#: Model precision: ``auto`` (int8 where the CPU has VNNI/AMX and a variant ships), ``fp32``.
PRECISION = "auto"
#: Count smoothing for the displayed and alerted counts.
SMOOTH = "ema:0.3"
#: Frames per engine call (file mode; fleet: gathered across a node's streams).
BATCH = 8
#: Process every Nth frame.
STRIDE = 1
#: Reconnect attempts in a row before a live source is given up.
RECONNECT_MAX = 10
#: First reconnect delay in seconds (doubles each attempt).
RECONNECT_BACKOFF_S = 0.5
#: Longest reconnect delay in seconds.
RECONNECT_BACKOFF_CAP_S = 30.0
#: Seconds without data before a network stream is reopened.
OPEN_TIMEOUT_S = 10.0
#: Address of metrics endpoints (any other needs a token).
METRICS_HOST = "127.0.0.1"
#: Most pictures per second per source the web monitor encodes (counting never waits for them)
#: and its page shows. Each picture a second costs a browser on the counting machine about 1.4%
#: of a core (benchmarks/bench_web.py), which slows counting on 2 cores about twice as much;
#: at 1 a browser on the same 2 cores cost the counting 3.7-5.9 % (docs/benchmarks.md).
WEB_FPS = 1.0

#: Aggregation window of ``--aggregate-out`` when ``--aggregate`` is not given.
AGGREGATE_WINDOW = "60s"
