"""Counting speed with ``--web`` open in a browser against without (issue: within 5 %).

Run from the repository root with the web extra, Selenium and the system's Chromium:

    python benchmarks/bench_web.py                  # 3 rounds over the example clip
    python benchmarks/bench_web.py --pairs 5 --threads 2

Each round runs ``streamcount run CLIP --no-dashboard --summary-json ...`` without ``--web``,
with ``--web`` and nobody watching, and with ``--web`` and a headless Chromium showing the
monitor the whole time (so pictures are drawn, encoded, fetched and shown), in alternating
order, and compares the end-to-end fps the run reports. Nothing here is a timed test; stop
other heavy jobs first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium() -> Any:
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,860"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def one_run(clip: str, threads: int, web: bool, driver: Any, frames: int,
            browse: bool = True) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp()) / "summary.json"
    cmd = [sys.executable, "-m", "streamcount", "run", clip, "--no-dashboard", "--quiet",
           "--threads", str(threads), "--summary-json", str(out), "--max-frames", str(frames)]
    port = free_port()
    if web:
        cmd += ["--web", f"127.0.0.1:{port}", "--web-zones", str(out.with_name("z.json"))]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if web and browse:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        driver.get(f"http://127.0.0.1:{port}/")
    rc = proc.wait()
    if web and browse:
        driver.get("about:blank")
    if rc != 0:
        raise SystemExit(f"streamcount run failed with exit status {rc}")
    return dict(json.loads(out.read_text()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(REPO / "examples" / "pets2009_s2l1.mp4"))
    p.add_argument("--pairs", type=int, default=3, help="rounds")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--frames", type=int, default=400)
    args = p.parse_args()
    driver = chromium()
    modes = {"without --web": (False, False), "--web, no browser": (True, False),
             "--web + browser": (True, True)}
    fps: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for i in range(args.pairs):
            order = list(modes) if i % 2 == 0 else list(reversed(modes))
            for mode in order:
                web, browse = modes[mode]
                s = one_run(args.clip, args.threads, web, driver, args.frames, browse)
                fps[mode].append(s["e2e_fps"])
                print(f"round {i + 1}: {mode:18s} {s['e2e_fps']:7.2f} fps end to end, "
                      f"engine {s['engine_fps']:.2f} fps")
    finally:
        driver.quit()
    base = statistics.median(fps["without --web"])
    cpu = platform.processor() or platform.machine()
    for mode, values in fps.items():
        m = statistics.median(values)
        print(f"{cpu}, {os.cpu_count()} cores, --threads {args.threads}: {mode:18s} median "
              f"{m:.2f} fps ({100 * (m - base) / base:+.1f} %)")


if __name__ == "__main__":
    main()
