"""Camera fleets on a Ray cluster: ``streamcount fleet FLEET.yaml``.

The single-machine path (``streamcount run``) never imports this package or Ray. Here:

- :mod:`.config` reads the fleet file (sources, zones, sinks, cluster settings);
- :mod:`.workers` holds the two actor classes, plain Python so they are testable without Ray:
  a :class:`~.workers.SourceWorker` per source decodes on its node, and an
  :class:`~.workers.InferenceWorker` per GPU (or per CPU node) batches frames across streams
  through the same :class:`~streamcount.engine.Counter` as ``run``;
- :mod:`.ledger` keeps the exactly-once guarantee (rows carry source and frame index; the driver
  writes a row only when its index is past the last one written, and a restarted source resumes
  right after it);
- :mod:`.runner` is the driver: it places actors on nodes, moves frame references between them,
  writes the per-source CSV/JSONL rows, and restarts what died;
- :mod:`.dashboard` is the fleet view (per source, per node).
"""
