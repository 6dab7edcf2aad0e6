"""Counting speed with ``--web`` open in a browser against without (issue: within 5 %).

Run from the repository root with the web extra, Selenium and the system's Chromium:

    python benchmarks/bench_web.py                  # 3 pairs over the example clip
    python benchmarks/bench_web.py --pairs 5 --threads 2

Each pair runs ``streamcount run CLIP --no-dashboard --summary-json ...`` once without and
once with ``--web`` (a headless Chromium showing the monitor the whole time, so the pictures
are encoded and fetched), alternating which goes first, and compares the end-to-end fps the
run reports. Nothing here is a timed test; stop other heavy jobs first.
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


def one_run(clip: str, threads: int, web: bool, driver: Any, frames: int) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp()) / "summary.json"
    cmd = [sys.executable, "-m", "streamcount", "run", clip, "--no-dashboard", "--quiet",
           "--threads", str(threads), "--summary-json", str(out), "--max-frames", str(frames)]
    port = free_port()
    if web:
        cmd += ["--web", f"127.0.0.1:{port}", "--web-zones", str(out.with_name("z.json"))]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if web:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        driver.get(f"http://127.0.0.1:{port}/")
    rc = proc.wait()
    if web:
        driver.get("about:blank")
    if rc != 0:
        raise SystemExit(f"streamcount run failed with exit status {rc}")
    return dict(json.loads(out.read_text()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(REPO / "examples" / "pets2009_s2l1.mp4"))
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--frames", type=int, default=400)
    args = p.parse_args()
    driver = chromium()
    fps: dict[str, list[float]] = {"without": [], "with": []}
    try:
        for i in range(args.pairs):
            order = [False, True] if i % 2 == 0 else [True, False]
            for web in order:
                s = one_run(args.clip, args.threads, web, driver, args.frames)
                fps["with" if web else "without"].append(s["e2e_fps"])
                print(f"pair {i + 1}: {'with' if web else 'without':7s} --web: "
                      f"{s['e2e_fps']:.2f} fps end to end, engine {s['engine_fps']:.2f} fps")
    finally:
        driver.quit()
    a, b = statistics.median(fps["without"]), statistics.median(fps["with"])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores: median "
          f"{a:.2f} fps without, {b:.2f} fps with --web and a browser on the monitor "
          f"({100 * (b - a) / a:+.1f} %)")


if __name__ == "__main__":
    main()
