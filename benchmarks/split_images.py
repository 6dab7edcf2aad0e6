"""Link the original images of a prepared split into one folder (for ``export --int8``).

``streamcount export --int8`` calibrates on real images and checks its drift on others; for a
bundled model these are the originals of the training split (calibration) and of the
validation split (check), which the prepared HDF5 names but does not hold at full size:

    python benchmarks/split_images.py data/shb-half-s4/train.h5 \\
        ../shared/data/shanghaitech-b/train_data/images --out /tmp/cal/shb-train
    streamcount export CKPT --out int8/crowd.onnx --int8 --calibration /tmp/cal/shb-train ...

Each image of the split becomes a symbolic link in ``--out`` (nothing is copied); an image the
split names but the folders do not hold is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamcount.images import IMAGE_SUFFIXES
from streamcount.training.store import _attr, _open


def split_names(split: Path) -> list[str]:
    """The image names (file stems) a prepared split holds."""
    with _open(split) as f:
        return sorted(Path(str(_attr(f["samples"][k].attrs["name"]))).stem for k in f["samples"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split", type=Path, help="a prepared split (train.h5, val.h5)")
    ap.add_argument("images", type=Path, nargs="+", help="folders holding the original images")
    ap.add_argument("--out", type=Path, required=True, help="folder for the links (new or empty)")
    args = ap.parse_args()
    if not args.split.is_file():
        raise SystemExit(f"error: {args.split} not found; make it with `streamcount prepare`")
    names = set(split_names(args.split))
    files = {p.stem: p.resolve() for d in args.images for p in d.rglob("*")
             if p.stem in names and p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(names - set(files))
    if missing:
        raise SystemExit(f"error: {len(missing)} images of {args.split} are not in "
                         f"{', '.join(map(str, args.images))} (first: {missing[0]})")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"error: {args.out} is not empty; give a new folder")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        (args.out / files[name].name).symlink_to(files[name])
    print(f"linked {len(files)} images of {args.split} into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
