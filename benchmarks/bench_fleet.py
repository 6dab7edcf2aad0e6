"""Capacity benchmark: how many camera streams one machine counts, with `run` and with `fleet`.

Run from the repository root (needs the cluster extra for the fleet part):

    python benchmarks/bench_fleet.py            # about 2-3 minutes on a 2-core CPU
    python benchmarks/bench_fleet.py --frames 100 --streams 1 2 4

Every stream is the example clip resized to 640x480, read as a file at full speed (every frame,
no pacing), counted with the default ``crowd`` model. It measures the total frames per second
of all streams together:

- ``streamcount run`` with 1, 2 and 4 streams in one process (one engine, batches across
  streams);
- ``streamcount fleet`` on a local Ray instance with the same streams (source actors decode,
  one inference actor batches), the steady-state rate after the actors are up.

From the best total rate it derives capacity: streams this machine keeps up with at 25, 10 and
5 fps each, and per CPU core. Results go to docs/fleet.json and docs/fleet.md. Stop other heavy
jobs first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_engine import frames_640, machine  # noqa: E402


def write_clip(path: Path, n: int) -> Path:
    """The example clip at 640x480, ``n`` frames (looped), mp4v."""
    frames = frames_640(n)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


def bench_run(clip: Path, streams: int, model: str, out: Path, device: str = "auto",
              batch: int = 8) -> dict:
    """``streamcount run`` with ``streams`` copies of ``clip``."""
    from streamcount.commands.run import RunConfig, run_config

    summary = out / f"run{streams}.json"
    cfg = RunConfig(sources=[str(clip)] * streams, model=model, mode="file",
                    outputs={"csv": out / f"run{streams}.csv"}, dashboard=False, quiet=True,
                    summary_json=summary, device=device, batch=batch)
    run_config(cfg)
    s = json.loads(summary.read_text())
    frames = sum(v["frames"] for v in s["sources"].values())
    return {"case": f"run, {streams} stream(s)", "streams": streams, "frames": frames,
            "seconds": s["wall_seconds"], "total_fps": s["e2e_fps"],
            "engine_fps": s["engine_fps"], "provider": s["provider"]}


def bench_fleet(clip: Path, streams: int, model: str, out: Path, cpus: int) -> dict:
    """``streamcount fleet`` on a local Ray instance; the rate once the actors are up."""
    import ray

    from streamcount.fleet.config import FleetConfig
    from streamcount.fleet.runner import FleetRunner

    cfg = FleetConfig.from_dict({
        "model": model, "output": str(out / f"fleet{streams}"), "num_cpus": cpus,
        "sources": [{"source": str(clip), "name": f"cam{i}", "mode": "file"}
                    for i in range(streams)]})
    runner = FleetRunner(cfg)
    t0 = time.monotonic()
    runner.start()
    t1 = time.monotonic()
    first = None
    while runner.step():
        if first is None and any(lane.stats.processed for lane in runner.lanes.values()):
            first = (time.monotonic(), sum(lane.stats.processed for lane in runner.lanes.values()))
    t2 = time.monotonic()
    s = runner.summary()
    runner.close()
    if ray.is_initialized():
        ray.shutdown()
    t_first, n_first = first or (t1, 0)
    steady = (s["frames"] - n_first) / (t2 - t_first) if t2 > t_first else 0.0
    node = s["nodes"][0]
    return {"case": f"fleet (local Ray, {cpus} CPUs), {streams} stream(s)", "streams": streams,
            "frames": s["frames"], "startup_s": round(t1 - t0, 2),
            "seconds": round(t2 - t1, 2), "total_fps": round(steady, 2),
            "mean_batch": round(node["mean_batch"] or 0.0, 2),
            "engine_ms_per_call": round(node["engine_ms"] or 0.0, 2),
            "provider": node["provider"]}


def write_markdown(result: dict, path: Path) -> None:
    """The table and the capacity lines."""
    m = result["machine"]
    lines = ["# Capacity: streams per machine", "",
             f"Measured {result['date']} with `python benchmarks/bench_fleet.py` on "
             f"{m.get('Model name', '?')}, {m.get('CPU(s)', '?')} CPUs "
             f"({', '.join(m.get('simd', []))}); GPU: {m.get('gpu') or 'none'}.",
             f"Each stream: the example clip at 640x480, {result['frames_per_stream']} frames, "
             f"read at full speed, model `{result['model']}`.", "",
             "| case | streams | frames | total fps | notes |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        note = f"engine alone {r['engine_fps']:.1f} fps" if "engine_fps" in r else (
            f"start-up {r['startup_s']} s, mean batch {r['mean_batch']}, "
            f"{r['engine_ms_per_call']} ms per engine call")
        lines.append(f"| {r['case']} | {r['streams']} | {r['frames']} | {r['total_fps']:.1f} | "
                     f"{note} |")
    c = result["capacity"]
    lines += ["", f"Best total rate: {c['best_total_fps']:.1f} fps ({c['best_case']}). "
              f"Streams kept up with: {c['streams_at_25fps']:.1f} at 25 fps, "
              f"{c['streams_at_10fps']:.1f} at 10 fps, {c['streams_at_5fps']:.1f} at 5 fps "
              f"({c['fps_per_core']:.1f} frames/s per CPU core).", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    """Run the cases and write docs/fleet.{json,md}."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames per stream")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--model", default="crowd")
    ap.add_argument("--no-fleet", action="store_true", help="skip the Ray part")
    ap.add_argument("--device", default="auto", help="engine device for the run part (auto)")
    ap.add_argument("--batch", type=int, default=8, help="frames per engine call (8)")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = write_clip(d / "clip640.mp4", args.frames)
        for n in args.streams:
            rows.append(bench_run(clip, n, args.model, d, args.device, args.batch))
            print(rows[-1], flush=True)
        if not args.no_fleet:
            rows.append(bench_fleet(clip, max(args.streams), args.model, d, cpus))
            print(rows[-1], flush=True)
    best = max(rows, key=lambda r: r["total_fps"])
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(), "model": args.model, "frames_per_stream": args.frames,
        "rows": rows,
        "capacity": {"best_case": best["case"], "best_total_fps": best["total_fps"],
                     "streams_at_25fps": best["total_fps"] / 25,
                     "streams_at_10fps": best["total_fps"] / 10,
                     "streams_at_5fps": best["total_fps"] / 5,
                     "fps_per_core": best["total_fps"] / cpus},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "fleet.md")
    print((args.out / "fleet.md").read_text())


if __name__ == "__main__":
    main()
