"""UCSD pedestrian dataset, ``vidf1_33`` (Chan, Liang & Vasconcelos, CVPR 2008).

Published layout (``root`` holds both folders)::

    vidf/vidf1_33_00N.y/vidf1_33_00N_fNNN.png     238x158 grey frames, N = 0..9, NNN = 001..200
    vidf-cvpr/vidf1_33_00N_frame_full.mat         frame[0, i]['loc'][0, 0]: N x 3 (x, y, z), 1-based
    vidf-cvpr/vidf1_33_roi_mainwalkway.mat        roi['mask'] (or the polygon roi['xi'], roi['yi'])
    vidf-cvpr/vidf1_33_dmap3.mat                  dmap['pmapxy']: the perspective weights

(the three ``.mat`` files are also found directly under ``root``). Frames are numbered
``N * 200 + NNN`` over the 2000-frame video; the standard split trains on frames 601-1400
(sequences 003-006) and tests on the other 1200. Only sequences present on disk are listed.

``pmapxy`` is an area weight (large far away); the sample's ``perspective`` is its linear scale
``1 / sqrt(pmapxy)`` (large near the camera).
"""

from __future__ import annotations

import logging
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

logger = logging.getLogger(__name__)

FORMAT = FormatInfo("ucsd", "UCSD pedestrians vidf1_33 (vidf/, vidf-cvpr/)", "video",
                    "perspective", 3.0)
SPLITS = ("train", "test")
FRAMES_PER_SEQ = 200
TRAIN = range(601, 1401)
PREFIX = "vidf1_33"
_FRAME = re.compile(rf"^{PREFIX}_(\d{{3}})_f(\d{{3}})\.png$", re.IGNORECASE)
ROI_FILE = f"{PREFIX}_roi_mainwalkway.mat"
DMAP_FILE = f"{PREFIX}_dmap3.mat"


@dataclass
class Options:
    """UCSD reader options.

    Attributes:
        use_roi: Attach the main-walkway region of interest.
        use_perspective: Attach the perspective (scale) map from the dmap file.
    """

    use_roi: bool = True
    use_perspective: bool = True


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / "vidf-cvpr" / name, root / name):
        if cand.is_file():
            return cand
    return None


def _frames(root: Path) -> dict[int, Path]:
    vidf = require_dir(root / "vidf", "UCSD vidf")
    out: dict[int, Path] = {}
    for seq_dir in vidf.iterdir():
        if not seq_dir.is_dir():
            continue
        for p in seq_dir.iterdir():
            m = _FRAME.match(p.name)
            if m:
                seq, f = int(m.group(1)), int(m.group(2))
                out[seq * FRAMES_PER_SEQ + f] = p
    if not out:
        raise InputError(
            f"{vidf} holds no {PREFIX}_00N.y/{PREFIX}_00N_fNNN.png frames: is it the UCSD data?"
        )
    return out


def frame_name(index: int) -> str:
    """Name of global frame ``index`` (1-2000), e.g. ``601 -> "vidf1_33_003_f001"``."""
    seq, f = divmod(index - 1, FRAMES_PER_SEQ)
    return f"{PREFIX}_{seq:03d}_f{f + 1:03d}"


def _parse(name: str) -> tuple[int, int]:
    m = re.match(rf"^{PREFIX}_(\d{{3}})_f(\d{{3}})$", name)
    if not m:
        raise InputError(f"{name!r} is not a UCSD frame name (expected {PREFIX}_00N_fNNN)")
    return int(m.group(1)), int(m.group(2))


def keys(root: Path, split: str, **opts: Any) -> list[str]:
    """Frame names of a split that exist on disk, in time order."""
    check_split(split, SPLITS, "ucsd")
    make_options(Options, opts, "ucsd")
    root = require_dir(Path(root), "UCSD dataset")
    frames = _frames(root)
    chosen = [i for i in sorted(frames) if (i in TRAIN) == (split == "train")]
    return [frame_name(i) for i in chosen]


_list_keys = keys


@lru_cache(maxsize=16)
def _annotations(path: Path) -> list[np.ndarray]:
    mat = load_mat(path, ("frame",), "expected frame{i}.loc (x, y, z) points")
    out = []
    for i, entry in enumerate(np.asarray(mat["frame"]).reshape(-1)):
        loc = mat_struct_field(entry, "loc", path, f"frame[0, {i}]")
        out.append(as_points(loc, path, f"frame[0, {i}]['loc']", one_based=True))
    return out


@lru_cache(maxsize=4)
def _roi(path: Path, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    mat = load_mat(path, ("roi",), "expected the struct roi with mask (or xi, yi)")
    roi = mat["roi"]
    names = roi.dtype.names or ()
    mask: np.ndarray
    if "mask" in names:
        mask = (np.asarray(mat_struct_field(roi, "mask", path, "roi")) > 0).astype(np.uint8)
    elif "xi" in names and "yi" in names:
        xi = np.asarray(mat_struct_field(roi, "xi", path, "roi"), np.float64).reshape(-1) - 1
        yi = np.asarray(mat_struct_field(roi, "yi", path, "roi"), np.float64).reshape(-1) - 1
        mask = np.zeros(hw, np.uint8)
        poly = np.round(np.stack([xi, yi], 1)).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1)
    else:
        raise InputError(f"{path}: roi has neither 'mask' nor 'xi'/'yi'; is it the right file?")
    if mask.shape != hw:
        logger.warning("%s: ROI is %s, frames are %s; resizing it", path, mask.shape, hw)
        mask = cv2.resize(mask, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask


@lru_cache(maxsize=4)
def _perspective(path: Path, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    mat = load_mat(path, ("dmap",), "expected the struct dmap with pmapxy")
    pmap = np.asarray(mat_struct_field(mat["dmap"], "pmapxy", path, "dmap"), np.float64)
    pmap = np.where(pmap > 0, pmap, np.nan)
    scale: np.ndarray = 1.0 / np.sqrt(pmap)
    scale = np.where(np.isfinite(scale), scale, np.nanmedian(scale)).astype(np.float32)
    if scale.shape != hw:
        logger.warning("%s: perspective is %s, frames are %s; resizing it", path, scale.shape, hw)
        scale = cv2.resize(scale, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    return scale


def read(root: Path, split: str, *, keys: list[str] | None = None, **opts: Any) -> Iterator[Sample]:
    """Yield UCSD frames (``H x W x 1`` grey) with pedestrian points, ROI and perspective.

    Args:
        root: Folder holding ``vidf/`` and ``vidf-cvpr/``.
        split: ``"train"`` or ``"test"``.
        keys: Only these frame names (default: the whole split).
        **opts: :class:`Options` fields.
    """
    root = Path(root)
    o: Options = make_options(Options, opts, "ucsd")
    names = keys if keys is not None else _list_keys(root, split, **opts)
    roi_path = _find(root, ROI_FILE) if o.use_roi else None
    dmap_path = _find(root, DMAP_FILE) if o.use_perspective else None
    if names and o.use_perspective and dmap_path is None:
        logger.warning("%s not found under %s: samples carry no perspective map", DMAP_FILE, root)
    for name in names:
        seq, f = _parse(name)
        ann_name = f"{PREFIX}_{seq:03d}_frame_full.mat"
        ann_path = _find(root, ann_name)
        if ann_path is None:
            raise InputError(
                f"frames of sequence {seq:03d} have no annotation: {ann_name} is in neither "
                f"{root / 'vidf-cvpr'} nor {root}; add it or remove {PREFIX}_{seq:03d}.y"
            )
        ann = _annotations(ann_path)
        if f > len(ann):
            raise InputError(
                f"frame {name} has no annotation: {ann_path} covers {len(ann)} frames"
            )
        image = load_image(root / "vidf" / f"{PREFIX}_{seq:03d}.y" / f"{name}.png", grey=True)
        hw = image.shape[:2]
        pts = drop_outside(ann[f - 1], hw, name)
        yield Sample(
            name=name,
            image=image,
            points=pts,
            roi=_roi(roi_path, hw) if roi_path is not None else None,
            perspective=_perspective(dmap_path, hw) if dmap_path is not None else None,
            meta={"frame": seq * FRAMES_PER_SEQ + f, "sequence": seq,
                  "file": f"vidf/{PREFIX}_{seq:03d}.y/{name}.png"},
        )
