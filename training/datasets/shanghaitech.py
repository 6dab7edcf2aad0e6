"""ShanghaiTech crowd counting, part A or B (Zhang et al., CVPR 2016).

Layout (``root`` is the part folder, e.g. ``part_B``)::

    train_data/images/IMG_1.jpg        train_data/ground-truth/GT_IMG_1.mat
    test_data/images/...               test_data/ground-truth/...

Each ``GT_IMG_n.mat`` holds ``image_info[0, 0][0, 0]['location']``, ``N x 2`` 1-based (x, y)
head points. A missing ``test_data`` folder is an empty test split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamcount.errors import InputError
from streamcount.training.datasets import (
    FormatInfo,
    as_points,
    check_split,
    drop_outside,
    load_image,
    load_mat,
    make_options,
    mat_struct_field,
    require_dir,
)
from streamcount.training.datasets.base import Sample

FORMAT = FormatInfo("shanghaitech", "ShanghaiTech part A or B ({train,test}_data/)", "images",
                    "adaptive", 8.0)
SPLITS = ("train", "test")
_FOLDER = {"train": "train_data", "test": "test_data"}
_IMG = re.compile(r"^IMG_(\d+)\.jpg$", re.IGNORECASE)
_GT = re.compile(r"^GT_IMG_(\d+)\.mat$", re.IGNORECASE)


@dataclass
class Options:
    """ShanghaiTech reader options (none yet; kept for a uniform interface)."""


def _natural(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)", name)
    return (int(m.group(1)) if m else -1, name)


def keys(root: Path, split: str, **opts: Any) -> list[str]:
    """Image stems (``"IMG_1"``) of a split, in numeric order; [] when the split is absent."""
    check_split(split, SPLITS, "shanghaitech")
    make_options(Options, opts, "shanghaitech")
    root = require_dir(Path(root), "ShanghaiTech")
    part = root / _FOLDER[split]
    if not part.exists():
        if not any((root / f).is_dir() for f in _FOLDER.values()):
            raise InputError(
                f"{root} has neither train_data/ nor test_data/: --root must be the part folder "
                "(e.g. .../part_B)"
            )
        return []
    images_dir = require_dir(part / "images", "ShanghaiTech images")
    gt_dir = require_dir(part / "ground-truth", "ShanghaiTech ground-truth")
    images = {p.stem for p in images_dir.iterdir() if _IMG.match(p.name)}
    gts = {p.stem[3:] for p in gt_dir.iterdir() if _GT.match(p.name)}
    lonely = sorted(images - gts, key=_natural)
    if lonely:
        raise InputError(
            f"{part}: {len(lonely)} image(s) without annotation, e.g. images/{lonely[0]}.jpg has "
            f"no ground-truth/GT_{lonely[0]}.mat; add it or remove the image"
        )
    orphan = sorted(gts - images, key=_natural)
    if orphan:
        raise InputError(
            f"{part}: {len(orphan)} annotation(s) without image, e.g. ground-truth/GT_{orphan[0]}"
            f".mat has no images/{orphan[0]}.jpg; restore the image or remove the annotation"
        )
    return sorted(images, key=_natural)


_list_keys = keys


def read(root: Path, split: str, *, keys: list[str] | None = None, **opts: Any) -> Iterator[Sample]:
    """Yield ShanghaiTech images with their head points.

    Args:
        root: The part folder.
        split: ``"train"`` or ``"test"``.
        keys: Only these stems (default: the whole split).
        **opts: :class:`Options` fields.
    """
    root = Path(root)
    names = keys if keys is not None else _list_keys(root, split, **opts)
    part = root / _FOLDER[split] if split in _FOLDER else root
    for stem in names:
        image = load_image(part / "images" / f"{stem}.jpg")
        gt_path = part / "ground-truth" / f"GT_{stem}.mat"
        mat = load_mat(gt_path, ("image_info",), "expected image_info[0,0][0,0]['location']")
        loc = mat_struct_field(mat["image_info"], "location", gt_path, "image_info")
        pts = as_points(loc, gt_path, "image_info location", one_based=True)
        pts = drop_outside(pts, image.shape[:2], stem)
        yield Sample(name=stem, image=image, points=pts,
                     meta={"file": f"{_FOLDER.get(split, '')}/images/{stem}.jpg"})
