"""Bring onnxruntime-gpu to the GPU machine in pieces that each fit one transfer.

The GPU machine has no onnxruntime-gpu and no network; its wheel (about 256 MB, built for
CUDA 13) is larger than what one `run` call carries (64 MiB). Here:

    python benchmarks/gpu_wheel.py split            # downloads the cp312 wheel, writes
                                                    # data/wheel/part-00 ... part-07 (32 MiB)

There, one call per part (each `run` carries one part; the machine keeps /tmp between calls
made within 30 s), the last one joining and installing (see docs/gpu-runbook.md):

    python benchmarks/gpu_wheel.py stash data/wheel/part-00     # copies it to /tmp/ortgpu/
    ...
    python benchmarks/gpu_wheel.py install                       # joins, checks, installs
    export PYTHONPATH=/tmp/ortgpu/site                           # ahead of the CPU build

A call carries the whole working tree too, 64 MiB in all: 32 MiB parts leave 32 MiB for it.
The wheel goes to its own folder (``pip install --target``) rather than over the machine's
CPU-only onnxruntime, which owns the same package folder.
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
PART = 32 * 1024 * 1024
SITE = STASH / "site"
VERSION = "1.31.1"
#: The GPU machine's Python (its wheel tag), not this machine's.
GPU_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64")


def split(version: str = VERSION, python: str = GPU_PYTHON,
          wheel: Path | None = None, out: Path = WHEEL_DIR, part_size: int = PART) -> list[Path]:
    """Download the wheel for the GPU machine's Python (no dependencies: that machine has
    onnxruntime's) and cut it into parts with a manifest; ``wheel``: use one already here."""
    out.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        platforms = [a for plat in PLATFORMS for a in ("--platform", plat)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d",
                        str(out), "--only-binary=:all:", "--python-version", python,
                        *platforms, f"onnxruntime-gpu=={version}"], check=True)
        tag = "cp" + python.replace(".", "")
        wheel = next(out.glob(f"onnxruntime_gpu-{version}-{tag}-*.whl"))
    data = wheel.read_bytes()
    parts = []
    for i in range(0, len(data), part_size):
        p = out / f"part-{i // part_size:02d}"
        p.write_bytes(data[i : i + part_size])
        parts.append(p)
    manifest = {"wheel": wheel.name, "sha256": hashlib.sha256(data).hexdigest(),
                "parts": [p.name for p in parts]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if wheel.parent == out:
        wheel.unlink()
    return parts


def stash(part: Path, stash_dir: Path = STASH) -> None:
    """Keep a part (and the manifest beside it) outside the working tree, which each call
    replaces."""
    stash_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(part, stash_dir / part.name)
    manifest = part.parent / "manifest.json"
    if manifest.is_file():
        shutil.copy(manifest, stash_dir / "manifest.json")
    print(f"stashed {part.name}: {sorted(p.name for p in stash_dir.glob('part-*'))}")


def join(stash_dir: Path = STASH) -> Path:
    """Join the stashed parts into the wheel, checked against the manifest's sha256."""
    manifest = json.loads((stash_dir / "manifest.json").read_text())
    missing = [p for p in manifest["parts"] if not (stash_dir / p).is_file()]
    if missing:
        raise SystemExit(f"error: parts missing from {stash_dir}: {missing}; stash them first")
    data = b"".join((stash_dir / p).read_bytes() for p in manifest["parts"])
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise SystemExit("error: the joined wheel does not match its sha256; stash again")
    wheel = stash_dir / manifest["wheel"]
    wheel.write_bytes(data)
    return wheel


def install() -> None:
    """Join the stashed parts and install the wheel into its own folder (no dependencies)."""
    wheel = join()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--upgrade", "--target", str(SITE), str(wheel)], check=True)
    sys.path.insert(0, str(SITE))
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__} from {ort.__file__}: {ort.get_available_providers()}")
    print(f"export PYTHONPATH={SITE}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("split")
    sp.add_argument("--python", default=GPU_PYTHON, help="the GPU machine's Python version")
    sp.add_argument("--wheel", type=Path, help="a wheel already downloaded (skips pip download)")
    st = sub.add_parser("stash")
    st.add_argument("part", type=Path)
    sub.add_parser("install")
    args = ap.parse_args()
    if args.cmd == "split":
        for p in split(python=args.python, wheel=args.wheel):
            print(p, p.stat().st_size)
    elif args.cmd == "stash":
        stash(args.part)
    else:
        install()


if __name__ == "__main__":
    main()
