"""Pack prepared splits into one compact HDF5 file that travels to a GPU machine.

Per data folder and split: JPEG (or PNG, for the cells) bytes, the points, and the kernel the
densities were made with; densities are rebuilt from the points on arrival (a perspective
kernel becomes a fixed one of the same mean sigma: the models compare 4x4 block sums, where the
kernel matters little). The EfficientNet-Lite0 ImageNet weights ride along in fp16.

    python training/gpu/pack.py data/shb-half-s4 data/sha-half-s4 data/mall-half data/cells \\
        --out data/gpu-pack.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

if not __package__:  # run as a file from a checkout that pip never installed (the GPU machine)

    from checkout import mount  # training/gpu/checkout.py, this script's folder

    mount(Path(__file__).resolve().parents[2])

from streamcount.errors import InputError

#: The budget of what travels with the working tree (64 MiB), with room for the code.
MAX_BYTES = 56 * 1024 * 1024


def _encode(img: np.ndarray, lossless: bool, quality: int) -> bytes:
    import cv2

    bgr = img[..., ::-1] if img.shape[2] == 3 else img[..., 0]
    ok, buf = cv2.imencode(".png" if lossless else ".jpg", bgr,
                           [] if lossless else [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("cannot encode an image for the pack")
    return buf.tobytes()


def pack(folders: list[Path], out: Path, quality: int = 90, weights: bool = True) -> int:
    """Write the pack; returns its size in bytes.

    Raises:
        InputError: a folder without splits, or a pack over :data:`MAX_BYTES`.
    """
    import h5py

    from streamcount.training.store import read_split, split_info

    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
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
                lossless = info.get("source") == "cells"
                # densities are rebuilt on arrival with the split's fixed sigma (4 px otherwise)
                sigma = float(info.get("sigma") or 4.0)
                for i, rec in enumerate(read_split(folder / f"{split}.h5")):
                    s = g.create_group(f"{i:05d}")
                    s.attrs["name"] = str(rec["name"])
                    img = rec["image"] if rec["image"].ndim == 3 else rec["image"][..., None]
                    s.create_dataset("image", data=np.frombuffer(
                        _encode(img, lossless, quality), np.uint8))
                    s.attrs["channels"] = int(img.shape[2])
                    s.create_dataset("points", data=np.asarray(rec["points"], np.float32))
                    s.attrs["sigma"] = sigma
        if weights:
            from streamcount.training.models.encoders.efficientnet_lite import load_lite0_state

            w = h5.create_group("lite0")
            for k, v in load_lite0_state().items():
                arr = v.numpy()
                w.create_dataset(k, data=arr.astype(np.float16) if arr.dtype == np.float32
                                 else arr)
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise InputError(f"the pack would be {size / 2**20:.1f} MiB, over "
                         f"{MAX_BYTES / 2**20:.0f} MiB: lower --quality or pack fewer folders")
    tmp.replace(out)
    return size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="folders made by `streamcount prepare`")
    ap.add_argument("--out", type=Path, default=Path("data/gpu-pack.h5"))
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (90)")
    args = ap.parse_args(argv)
    size = pack(args.folders, args.out, args.quality)
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
