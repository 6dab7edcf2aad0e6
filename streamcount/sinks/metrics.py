"""Prometheus endpoint (``--metrics-port``).

Needs the ``metrics`` extra: ``pip install 'streamcount[metrics]'``.

Served on 127.0.0.1 by default. Bound to any other address (``--metrics-host``) it needs a
token (``--metrics-token`` or ``STREAMCOUNT_METRICS_TOKEN``), which scrapers send as
``Authorization: Bearer TOKEN`` (Prometheus: ``authorization: {credentials: TOKEN}``).
Metrics, labelled by ``source`` (and ``zone``; ``total`` is the whole frame):

- ``streamcount_objects`` / ``streamcount_objects_smoothed``: latest count per source and zone
  (not ``_count``: Prometheus reserves that suffix for histograms and summaries)
- ``streamcount_fps``: processed frames per second
- ``streamcount_latency_seconds``: engine latency (histogram)
- ``streamcount_frames_processed``, ``streamcount_frames_skipped``, ``streamcount_frames_corrupt``,
  ``streamcount_reconnects``: running totals per source
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from streamcount import defaults
from streamcount.errors import OutputError, require
from streamcount.exposure import check_exposure
from streamcount.frames import Result
from streamcount.sinks import Sink

#: The environment variable that gives the metrics token (`run --metrics-token`, fleets).
METRICS_TOKEN_ENV = "STREAMCOUNT_METRICS_TOKEN"

logger = logging.getLogger(__name__)


class MetricsSink(Sink):
    """Exports counts and health to Prometheus.

    Args:
        port: TCP port (0 picks a free one; see :attr:`port` after ``open``).
        host: Address to bind.
        stats: Source name -> an object with ``processed``, ``skipped``, ``corrupt`` and
            ``reconnects`` attributes (the pipeline's live statistics), read at scrape time.
    """

    def __init__(self, port: int, host: str = defaults.METRICS_HOST,
                 stats: Callable[[], Mapping[str, Any]] | None = None,
                 token: str | None = None, labels: Mapping[str, str] | None = None) -> None:
        check_exposure(host, token, "--metrics-host", "--metrics-token", METRICS_TOKEN_ENV)
        self.port = port
        self.host = host
        self.stats = stats
        self.token = token
        self.labels = dict(labels or {})  # source name -> its label (the file name, not a path)
        self.server: Any = None

    def open(self) -> None:
        """Start the HTTP server."""
        pc: Any = require("prometheus_client", "metrics")
        reg = self.registry = pc.CollectorRegistry()
        labels = ["source", "zone"]
        self.count = pc.Gauge("streamcount_objects", "latest count of objects", labels,
                              registry=reg)
        self.smoothed = pc.Gauge("streamcount_objects_smoothed", "latest smoothed count of "
                                 "objects", labels, registry=reg)
        self.fps = pc.Gauge("streamcount_fps", "processed frames per second", ["source"],
                            registry=reg)
        self.latency = pc.Histogram(
            "streamcount_latency_seconds", "engine latency per batch", ["source"], registry=reg,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        stats = self.stats
        if stats is not None:
            reg.register(_StatsCollector(pc, stats, self.labels))
        try:
            self.server = _serve(pc.make_wsgi_app(reg), self.host, self.port, self.token)
        except OSError as exc:
            raise OutputError(f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror}; "
                              "choose another --metrics-port") from None
        self.port = self.server.server_address[1]
        logger.info("metrics on http://%s:%d/metrics%s", self.host, self.port,
                    " (bearer token required)" if self.token else "")

    def write(self, result: Result) -> None:
        """Update the gauges from one result."""
        s = self.labels.get(result.source, result.source)
        self.count.labels(s, "total").set(result.count)
        self.smoothed.labels(s, "total").set(result.smoothed)
        for z, v in result.zones.items():
            self.count.labels(s, z).set(v)
            self.smoothed.labels(s, z).set(result.zones_smoothed.get(z, v))
        self.fps.labels(s).set(result.fps)
        self.latency.labels(s).observe(result.latency_ms / 1000.0)

    def close(self) -> None:
        """Stop the server."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _serve(app: Any, host: str, port: int, token: str | None) -> Any:
    """A threaded WSGI server for ``app`` in a daemon thread; a bearer token when given."""
    import hmac
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    def guarded(environ: dict, start_response: Any) -> Any:
        sent = environ.get("HTTP_AUTHORIZATION", "")
        if token and not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer"),
                                                ("Content-Type", "text/plain")])
            return [b"unauthorized\n"]
        return app(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:  # no access log (and no token) on stderr
            pass

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = make_server(host, port, guarded, server_class=Threaded, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _StatsCollector:
    """Reads the pipeline's running totals at scrape time."""

    def __init__(self, pc: Any, stats: Callable[[], Mapping[str, Any]],
                 labels: Mapping[str, str] | None = None) -> None:
        self.pc = pc
        self.stats = stats
        self.labels = labels or {}

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        fams = {k: CounterMetricFamily(f"streamcount_frames_{k}", f"frames {k}", labels=["source"])
                for k in ("processed", "skipped", "corrupt")}  # fmt: skip
        rec = CounterMetricFamily("streamcount_reconnects", "live source reconnects",
                                  labels=["source"])
        for name, st in self.stats().items():
            label = self.labels.get(name, name)
            for k, fam in fams.items():
                fam.add_metric([label], float(getattr(st, k, 0)))
            rec.add_metric([label], float(getattr(st, "reconnects", 0)))
        yield from fams.values()
        yield rec
