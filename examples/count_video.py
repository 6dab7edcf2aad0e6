"""Count people in a video with the streamcount Python API.

Usage:
    python examples/count_video.py [VIDEO] [--model crowd] [--every 10]

Prints the frame index, the count and the count per zone every N frames, and the mean count at
the end. Uses only the runtime (numpy, OpenCV, ONNX Runtime): no torch needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from streamcount import Counter
from streamcount.zones import ZoneSet

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(HERE / "pets2009_s2l1.mp4"))
    parser.add_argument("--model", default="crowd", help="bundled name or .onnx path")
    parser.add_argument("--zones", default=str(HERE / "pets2009_zones.json"))
    parser.add_argument("--every", type=int, default=10, help="print every N frames")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    args = parser.parse_args()

    counter = Counter(model=args.model, device="auto")
    zones = ZoneSet.load(args.zones) if args.zones else ZoneSet.empty()
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {args.video}")
    counts = []
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok or (args.max_frames and index >= args.max_frames):
            break
        result = counter.count(frame)
        density = zones.apply_roi(result.density)
        count = float(density.sum())
        counts.append(count)
        if index % args.every == 0:
            per_zone = "  ".join(f"{k}={v:.1f}" for k, v in zones.counts(density).items())
            print(f"frame {index:5d}  count {count:6.1f}  {per_zone}")
        index += 1
    cap.release()
    if counts:
        mean = sum(counts) / len(counts)
        print(f"{len(counts)} frames on {counter.device}: mean count {mean:.1f}")


if __name__ == "__main__":
    main()
