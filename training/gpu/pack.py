"""Pack prepared splits into one compact HDF5 file that travels to a GPU machine.

Per data folder and split: WebP bytes (quality 80; the synthetic cells lossless), the points, and
the kernel the densities were made with; densities are rebuilt from the points on arrival (a
perspective kernel becomes a fixed one of the same mean sigma: the models compare 4x4 block
sums, where the kernel matters little). An image that two folders share (Mall in two splits)
is stored once. The EfficientNet-Lite ImageNet weights the recipes start from ride along in
fp16 (``--weights lite0,lite2`` names the variants, Lite0 by default; ``--no-weights`` leaves
them out when every recipe starts from a shipped model's weights).

Each `run` call carries the working tree and what it names, 64 MiB in all: the pack's limit is
what the tree leaves (measured from ``git ls-files``), less a 2 MiB margin.

    python training/gpu/pack.py data/shb-half-s4 data/sha-half-s4 data/mall-half data/cells \\
        --out data/gpu-pack.h5
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file from a checkout that pip never installed (the GPU machine)

    from checkout import mount  # training/gpu/checkout.py, this script's folder

    mount(Path(__file__).resolve().parents[2])

from streamcount.errors import InputError

#: What one device call carries: the working tree and the named paths together.
CALL_BYTES = 64 * 1024 * 1024
MARGIN_BYTES = 2 * 1024 * 1024
#: OpenCV's WebP quality above 100 selects lossless coding.
LOSSLESS = 101


def tree_bytes(root: Path) -> int:
    """Size of the files a device call sends: tracked plus untracked-not-ignored."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return sum((root / f).stat().st_size for f in out.decode().split("\0")
               if f and (root / f).is_file())


def max_pack_bytes(root: Path) -> int:
    """The most a pack may weigh beside this working tree."""
    return CALL_BYTES - tree_bytes(root) - MARGIN_BYTES


def _encode(img: np.ndarray, quality: int) -> bytes:
    import cv2

    bgr = img[..., ::-1] if img.shape[2] == 3 else img[..., 0]
    ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise InputError("cannot encode an image for the pack")
    return buf.tobytes()


def pack(folders: list[Path], out: Path, quality: int = 80,
         weights: bool | Sequence[str] = True, max_bytes: int | None = None) -> int:
    """Write the pack; returns its size in bytes.

    Args:
        folders: Folders made by ``streamcount prepare``.
        out: The pack file.
        quality: WebP quality of photos (cells are stored lossless).
        weights: The EfficientNet-Lite variants whose ImageNet weights to carry (``True``:
            Lite0; ``False`` or empty: none).
        max_bytes: The most the pack may weigh (default: what the working tree leaves).

    Raises:
        InputError: a folder without splits, or a pack over ``max_bytes`` (default: what the
            working tree leaves of a device call).
    """
    if max_bytes is None:
        max_bytes = max_pack_bytes(Path(__file__).resolve().parents[2])
    import h5py

    from streamcount.training.store import read_split, split_info

    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}  # content hash -> dataset path: shared images stored once
    with h5py.File(tmp, "w") as h5:
        for folder in folders:
            splits = [s for s in ("train", "val") if (folder / f"{s}.h5").is_file()]
            if "train" not in splits:
                raise InputError(f"{folder} has no train.h5 to pack")
            for split in splits:
                info = dict(split_info(folder / f"{split}.h5"))
                g = h5.create_group(f"{folder.name}/{split}")
                for k, v in info.items():
                    if isinstance(v, (int, float, str, np.integer, np.floating)):
                        g.attrs[k] = v
                # the synthetic cells go lossless: trained on WebP at quality 95, a model counted
                # +2.6 more cells on the original PNGs than on the WebP copies (GPU run of
                # 2026-11-27, docs/benchmarks.md)
                q = LOSSLESS if info.get("source") == "cells" else quality
                # densities are rebuilt on arrival with the split's fixed sigma (4 px otherwise)
                sigma = float(info.get("sigma") or 4.0)
                for i, rec in enumerate(read_split(folder / f"{split}.h5")):
                    s = g.create_group(f"{i:05d}")
                    s.attrs["name"] = str(rec["name"])
                    img = rec["image"] if rec["image"].ndim == 3 else rec["image"][..., None]
                    data = _encode(img, q)
                    key = hashlib.sha1(data).hexdigest()
                    if key in stored:
                        s["image"] = h5[stored[key]]  # an HDF5 hard link
                    else:
                        s.create_dataset("image", data=np.frombuffer(data, np.uint8))
                        stored[key] = s["image"].name
                    s.attrs["channels"] = int(img.shape[2])
                    s.create_dataset("points", data=np.asarray(rec["points"], np.float32))
                    s.attrs["sigma"] = sigma
        variants = ("lite0",) if weights is True else tuple(weights or ())
        if variants:
            from streamcount.training.models.encoders.efficientnet_lite import load_lite_state

        for variant in variants:
            w = h5.create_group(variant)
            for k, v in load_lite_state(variant=variant).items():
                arr = v.numpy()
                w.create_dataset(k, data=arr.astype(np.float16) if arr.dtype == np.float32
                                 else arr)
    size = tmp.stat().st_size
    if size > max_bytes:
        tmp.unlink()
        raise InputError(f"the pack would be {size / 2**20:.1f} MiB, over the "
                         f"{max_bytes / 2**20:.1f} MiB the working tree leaves of a device call: "
                         "lower --quality, use --no-weights or pack fewer folders")
    tmp.replace(out)
    return size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="folders made by `streamcount prepare`")
    ap.add_argument("--out", type=Path, default=Path("data/gpu-pack.h5"))
    ap.add_argument("--quality", type=int, default=80, help="WebP quality of photos (80)")
    ap.add_argument("--weights", default="lite0",
                    help="EfficientNet-Lite variants whose ImageNet weights to carry, "
                         "comma-separated (default lite0)")
    ap.add_argument("--no-weights", "--no-lite0", dest="weights", action="store_const", const="",
                    help="leave out the ImageNet weights (recipes that start from a shipped model)")
    args = ap.parse_args(argv)
    try:
        variants = [v for v in args.weights.split(",") if v]
        size = pack(args.folders, args.out, args.quality, weights=variants)
    except InputError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
