"""Bring onnxruntime-gpu to the GPU machine in pieces that each fit one transfer.

The GPU machine has no onnxruntime-gpu and no network; its wheel (about 256 MB, built for
CUDA 13) is larger than what one `run` call carries (64 MiB). Here:

    python benchmarks/gpu_wheel.py split            # downloads the wheel, writes data/wheel/
                                                    # part-00 ... part-04 (< 60 MB each)

There, one call per part (each `run` carries one part; the machine keeps /tmp between calls
made within 30 s), the last one joining and installing (see docs/gpu-runbook.md):

    python benchmarks/gpu_wheel.py stash data/wheel/part-00     # copies it to /tmp/ortgpu/
    ...
    python benchmarks/gpu_wheel.py install                       # joins, checks, installs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEEL_DIR = REPO / "data" / "wheel"
STASH = Path("/tmp/ortgpu")
PART = 58 * 1024 * 1024
VERSION = "1.31.1"


def split(version: str = VERSION) -> list[Path]:
    """Download the wheel (no dependencies) and cut it into parts with a manifest."""
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(WHEEL_DIR),
                    f"onnxruntime-gpu=={version}"], check=True)
    wheel = next(WHEEL_DIR.glob(f"onnxruntime_gpu-{version}-*.whl"))
    data = wheel.read_bytes()
    parts = []
    for i in range(0, len(data), PART):
        p = WHEEL_DIR / f"part-{i // PART:02d}"
        p.write_bytes(data[i : i + PART])
        parts.append(p)
    manifest = {"wheel": wheel.name, "sha256": hashlib.sha256(data).hexdigest(),
                "parts": [p.name for p in parts]}
    (WHEEL_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2))
    wheel.unlink()
    return parts


def stash(part: Path) -> None:
    """Keep a part (and the manifest beside it) outside the working tree, which each call
    replaces."""
    STASH.mkdir(parents=True, exist_ok=True)
    shutil.copy(part, STASH / part.name)
    manifest = part.parent / "manifest.json"
    if manifest.is_file():
        shutil.copy(manifest, STASH / "manifest.json")
    print(f"stashed {part.name}: {sorted(p.name for p in STASH.glob('part-*'))}")


def install() -> None:
    """Join the stashed parts, check the hash, install the wheel without dependencies."""
    manifest = json.loads((STASH / "manifest.json").read_text())
    missing = [p for p in manifest["parts"] if not (STASH / p).is_file()]
    if missing:
        raise SystemExit(f"error: parts missing from {STASH}: {missing}; stash them first")
    data = b"".join((STASH / p).read_bytes() for p in manifest["parts"])
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise SystemExit("error: the joined wheel does not match its sha256; stash again")
    wheel = STASH / manifest["wheel"]
    wheel.write_bytes(data)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", str(wheel)], check=True)
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}: {ort.get_available_providers()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("split")
    st = sub.add_parser("stash")
    st.add_argument("part", type=Path)
    sub.add_parser("install")
    args = ap.parse_args()
    if args.cmd == "split":
        for p in split():
            print(p, p.stat().st_size)
    elif args.cmd == "stash":
        stash(args.part)
    else:
        install()


if __name__ == "__main__":
    main()
