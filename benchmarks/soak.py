"""Soak: resident memory over a long run of the real pipeline on a looped file.

    python benchmarks/soak.py --frames 100000 --model PATH_OR_NAME [--video OUT]

Frames are decoded from the example clip (rewound at its end), counted by the engine, passed
through zones, smoothing, the CSV sink (to /dev/null-like temp file) and, with ``--video``, the
overlay and video writer. Resident memory (RSS) is sampled every ``--every`` frames; the result
(growth after warm-up, maximum) goes to docs/soak.json and is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamcount.engine import Counter  # noqa: E402
from streamcount.frames import Frame  # noqa: E402
from streamcount.pipeline import Pipeline, PipelineConfig  # noqa: E402
from streamcount.sinks import Sink  # noqa: E402
from streamcount.sinks.csv import CsvSink  # noqa: E402
from streamcount.sources import Source  # noqa: E402
from streamcount.zones import ZoneSet  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LoopSource(Source):
    """A video file decoded again and again, ``limit`` frames in all (file mode)."""

    kind = "file"

    def __init__(self, path: Path, limit: int, size: tuple[int, int] | None) -> None:
        super().__init__(str(path))
        self.live = False
        self.path, self.limit, self.resize = path, limit, size
        self.fps = 10.0
        self.total = limit

    def open(self) -> None:
        self.cap = cv2.VideoCapture(str(self.path))

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        i = 0
        while i < self.limit and not stop.is_set():
            ok, img = self.cap.read()
            if not ok:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if self.resize:
                img = cv2.resize(img, self.resize)
            yield Frame(self.name, i, i / self.fps, time.time(), img)
            i += 1

    def close(self) -> None:
        self.cap.release()


class Sampler(Sink):
    """Samples RSS every ``every`` results."""

    def __init__(self, every: int) -> None:
        self.every, self.n, self.samples = every, 0, []
        self.t0 = time.monotonic()

    def write(self, result: object) -> None:
        self.n += 1
        if self.n % self.every == 0:
            self.samples.append((self.n, round(time.monotonic() - self.t0, 1), round(rss_mb(), 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--model", default="crowd")
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--size", default="640x480", help="frames are resized to WxH")
    ap.add_argument("--video", type=Path, help="also write the annotated video here")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "soak.json")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    clip = REPO / "examples" / "pets2009_s2l1.mp4"
    counter = Counter(args.model, device="auto")
    zones = ZoneSet.load(REPO / "examples" / "pets2009_zones.json")
    sampler = Sampler(args.every)
    with tempfile.TemporaryDirectory() as d:
        sinks: list[Sink] = [CsvSink(Path(d) / "rows.csv", zones.names), sampler]
        from streamcount.sinks.video import VideoSink

        src = LoopSource(clip, args.frames, (w, h))
        if args.video:
            sinks.append(VideoSink(args.video, {src.name: ("soak", 10.0)}))
        src.open()
        pipe = Pipeline([src], counter, sinks, PipelineConfig(batch=4, smooth="ema:0.3"), zones)
        for s in sinks:
            s.open()
        start_rss = rss_mb()
        pipe.run()
        for s in sinks:
            s.close()
        src.close()
    samples = sampler.samples
    warm = samples[min(2, len(samples) - 1)][2] if samples else start_rss
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "frames": sampler.n, "frame_size": f"{w}x{h}", "model": counter.name,
        "provider": counter.device, "seconds": round(pipe.wall_seconds, 1),
        "fps": round(pipe.e2e_fps, 1), "rss_start_mb": round(start_rss, 1),
        "rss_after_warmup_mb": warm, "rss_end_mb": samples[-1][2] if samples else None,
        "rss_max_mb": max((s[2] for s in samples), default=None),
        "growth_after_warmup_mb": round(samples[-1][2] - warm, 1) if samples else None,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    main()
