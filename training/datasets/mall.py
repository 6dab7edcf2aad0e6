"""Mall dataset (Chen, Loy, Gong & Xiang, BMVC 2012).

Layout: ``frames/seq_XXXXXX.jpg`` (640x480), ``mall_gt.mat`` with ``frame[0, i]['loc'][0, 0]``
an ``N x 2`` array of 1-based (x, y) head points, and ``perspective_roi.mat`` with
``roi[0, 0]['mask']`` (480x640 uint8) and ``pMapN`` (480x640). Standard split: frames 1-800
train, 801-2000 test. Only frames present on disk are listed, so a partial copy works (an
absent test part is an empty split).

``pMapN`` is an area weight (large far away); the sample's ``perspective`` is the linear scale
``1 / sqrt(pMapN)`` (large near the camera), which is what kernel sizes follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

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

FORMAT = FormatInfo("mall", "Mall dataset (frames/, mall_gt.mat, perspective_roi.mat)", "video",
                    "perspective", 4.0)
SPLITS = ("train", "test")
TRAIN = range(1, 801)
TEST = range(801, 2001)
_FRAME = re.compile(r"^seq_(\d+)\.jpg$", re.IGNORECASE)


@dataclass
class Options:
    """Mall reader options.

    Attributes:
        use_roi: Attach the region-of-interest mask to each sample.
        use_perspective: Attach the perspective (scale) map to each sample.
    """

    use_roi: bool = True
    use_perspective: bool = True


def _frames(root: Path) -> dict[int, Path]:
    frames_dir = require_dir(Path(root) / "frames", "Mall frames")
    out = {}
    for p in frames_dir.iterdir():
        m = _FRAME.match(p.name)
        if m:
            out[int(m.group(1))] = p
    if not out:
        raise InputError(f"{frames_dir} holds no seq_XXXXXX.jpg frames: is it the Mall dataset?")
    return out


def keys(root: Path, split: str, **opts: Any) -> list[str]:
    """Frame names (``"seq_000001"``) of a split that exist on disk, in time order."""
    check_split(split, SPLITS, "mall")
    make_options(Options, opts, "mall")
    require_dir(Path(root), "Mall dataset")
    frames = _frames(Path(root))
    rng = TRAIN if split == "train" else TEST
    return [f"seq_{i:06d}" for i in sorted(frames) if i in rng]


_list_keys = keys


@lru_cache(maxsize=4)
def _ground_truth(path: Path) -> list[np.ndarray]:
    mat = load_mat(path, ("frame",), "the Mall ground truth must hold 'frame'")
    frames = np.asarray(mat["frame"]).reshape(-1)
    out = []
    for i, entry in enumerate(frames):
        loc = mat_struct_field(entry, "loc", path, f"frame[0, {i}]")
        out.append(as_points(loc, path, f"frame[0, {i}]['loc']", one_based=True))
    return out


@lru_cache(maxsize=4)
def _roi_perspective(path: Path) -> tuple[np.ndarray, np.ndarray]:
    mat = load_mat(path, ("roi", "pMapN"), "Mall's perspective_roi.mat holds 'roi' and 'pMapN'")
    mask = np.asarray(mat_struct_field(mat["roi"], "mask", path, "roi"))
    roi = (mask > 0).astype(np.uint8)
    pmap = np.asarray(mat["pMapN"], dtype=np.float64)
    pmap = np.where(pmap > 0, pmap, np.nan)
    scale = 1.0 / np.sqrt(pmap)
    scale = np.where(np.isfinite(scale), scale, np.nanmedian(scale)).astype(np.float32)
    return roi, scale


def read(root: Path, split: str, *, keys: list[str] | None = None, **opts: Any) -> Iterator[Sample]:
    """Yield Mall frames with head points, ROI and perspective.

    Args:
        root: The Mall folder (holding ``frames/`` and ``mall_gt.mat``).
        split: ``"train"`` or ``"test"``.
        keys: Only these frame names (default: the whole split).
        **opts: :class:`Options` fields.
    """
    root = Path(root)
    o: Options = make_options(Options, opts, "mall")
    names = keys if keys is not None else _list_keys(root, split, **opts)
    if not names:
        return
    gt = _ground_truth(root / "mall_gt.mat")
    roi = persp = None
    if o.use_roi or o.use_perspective:
        pr = root / "perspective_roi.mat"
        if pr.is_file():
            roi, persp = _roi_perspective(pr)
    for name in names:
        m = re.match(r"^seq_(\d+)$", name)
        if not m:
            raise InputError(f"{name!r} is not a Mall frame name (expected seq_XXXXXX)")
        idx = int(m.group(1))
        if idx > len(gt):
            raise InputError(
                f"frame {name} has no annotation: {root / 'mall_gt.mat'} covers frames "
                f"1-{len(gt)}; remove the extra frames or use the full ground truth"
            )
        image = load_image(root / "frames" / f"{name}.jpg")
        hw = image.shape[:2]
        for what, arr in (("roi mask", roi), ("pMapN", persp)):
            if arr is not None and arr.shape != hw:
                raise InputError(
                    f"{root / 'perspective_roi.mat'}: {what} is {arr.shape}, frame {name} is "
                    f"{hw}; the files do not belong together"
                )
        pts = drop_outside(gt[idx - 1], hw, name)
        yield Sample(
            name=name,
            image=image,
            points=pts,
            roi=roi if o.use_roi else None,
            perspective=persp if o.use_perspective else None,
            meta={"frame": idx, "file": f"frames/{name}.jpg"},
        )
