"""``streamcount bench``: engine latency and throughput of one or more models on this machine."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamcount import defaults
from streamcount.errors import InputError
from streamcount.precision import PRECISIONS
from streamcount.settings import within

if TYPE_CHECKING:
    from streamcount.pipeline import BatchCounter

HELP = "measure engine latency and fps of models at given frame sizes (no torch needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount bench``."""
    p.add_argument("--model", action="append", help="bundled name or .onnx (repeatable)")
    p.add_argument("--size", action="append", help="frame size WxH (repeatable; 640x480)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--threads", type=int, default=defaults.THREADS,
                   help="ONNX Runtime intra-op threads (0: one per core)")
    p.add_argument("--host-threads", type=int, action="append",
                   help="threads for the per-frame work around the model in a batch "
                        "(repeatable: --host-threads 1 --host-threads 0; default 0: one per core, "
                        "up to 8)")
    p.add_argument("--precision", action="append", choices=list(PRECISIONS),
                   help="auto, fp32 or int8 (repeatable; default auto)")
    p.add_argument("--batch", type=int, action="append",
                   help="frames per engine call (repeatable: --batch 1 --batch 8; default 1)")
    p.add_argument("--fp16", action="store_true",
                   help="also time an fp16 copy of each model (GPUs; needs the onnx package)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    p.add_argument("--frame", type=Path, help="an image to use (default: the example clip)")
    p.add_argument("--json", action="store_true", help="one JSON object per case")


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"bad --size {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 1 or h < 1:
        raise InputError(f"bad --size {text!r}: both sides must be positive")
    return w, h


def _frame(path: Path | None) -> np.ndarray:
    import cv2

    from streamcount.images import read_image

    if path is not None:
        return read_image(path)
    clip = Path(__file__).resolve().parents[2] / "examples" / "pets2009_s2l1.mp4"
    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    cap.release()
    if ok:
        return frame
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def bench_case(counter: BatchCounter, frame: np.ndarray, batch: int, seconds: float) -> dict:
    """Time ``counter.count_batch`` on ``batch`` copies of ``frame`` for about ``seconds``."""
    frames = [frame] * batch
    for _ in range(3):  # warm-up: allocations, kernel selection
        counter.count_batch(frames)
    lat: list[float] = []
    inside: list[float] = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(lat) < 5:
        t0 = time.perf_counter()
        counter.count_batch(frames)
        lat.append((time.perf_counter() - t0) * 1000.0)
        inside.append(float(getattr(counter, "session_ms", float("nan"))))
    med = statistics.median(lat)
    session = statistics.median(inside)
    return {
        "median_ms": round(med, 2),
        "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "fps": round(1000.0 * batch / med, 1),
        # the host's share: pre- and post-processing around the ONNX Runtime call
        "session_ms": round(session, 2),
        "host_ms": round(med - session, 2),
        "runs": len(lat),
    }


def _fp16_copy(model: str, folder: Path) -> str:
    """An fp16 copy of a bundled model or .onnx file (inputs and outputs stay float32)."""
    from streamcount.errors import require
    from streamcount.models import resolve_model

    require("onnx", "train")
    from streamcount.exports.quantize import convert_fp16

    src = resolve_model(model)
    dst = folder / f"{src.stem}-fp16.onnx"
    convert_fp16(src, dst)
    return str(dst)


def run(args: argparse.Namespace) -> int:
    """Benchmark every model x size and print a table (or JSON)."""
    import cv2
    from rich.console import Console
    from rich.table import Table

    from streamcount.engine import Counter

    models = args.model or ["crowd"]
    sizes = [parse_size(s) for s in (args.size or ["640x480"])]
    base = _frame(args.frame)
    table = Table(title=f"streamcount bench ({platform.processor() or platform.machine()})")
    for col in ("model", "precision", "provider", "frame", "model input", "batch",
                "host threads", "median ms", "p95 ms", "fps", "in ORT ms", "host ms"):
        table.add_column(col)
    cases = [(m, p) for m in models for p in (args.precision or ["auto"])]
    batches = args.batch or [1]
    if not within(args.seconds, 0, 3600, above=True):
        raise InputError(f"--seconds must be from above 0 to 3600, got {args.seconds}")
    if any(b < 1 or b > 256 for b in batches):
        raise InputError("--batch must be from 1 to 256")
    tmp = tempfile.TemporaryDirectory()
    if args.fp16:
        cases += [(_fp16_copy(m, Path(tmp.name)), "fp32") for m in models]
    host_threads = args.host_threads or [defaults.HOST_THREADS]
    if any(t < 0 for t in host_threads):
        raise InputError("--host-threads must be 0 (one per core) or more")
    for (m, prec), ht in ((c, t) for c in cases for t in host_threads):
        counter = Counter(m, device=args.device, threads=args.threads, precision=prec,
                          host_threads=ht)
        for w, h in sizes:
            frame = cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA)
            for batch in batches:
                res = bench_case(counter, frame, batch, args.seconds)
                mh, mw = counter.pre.model_size(h, w)
                row = {"model": counter.name, "precision": counter.metadata.precision
                       if counter.metadata.precision == "fp16" else counter.precision,
                       "provider": counter.device, "frame": f"{w}x{h}",
                       "model_input": f"{mw}x{mh}", "batch": batch,
                       "host_threads": counter.host_threads, **res}  # fmt: skip
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    table.add_row(*(str(v) for k, v in row.items() if k != "runs"))
    tmp.cleanup()
    if not args.json:
        Console().print(table)
    return 0
