"""VGG synthetic fluorescent cells (Lempitsky & Zisserman, NIPS 2010).

Layout: ``NNNcell.png`` (256x256 RGB) next to ``NNNdots.png``, where every cell is marked by one
red pixel (R = 255, G and B low). Standard protocol: the training pool is images 1-100, from
which ``n_train`` (32 or 64) are drawn with a seed; the test set is images 101-200. When
``n_train`` is set, split ``"val"`` is the rest of the pool (never seen in training).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamcount.errors import InputError
from streamcount.training.datasets import (
    FormatInfo,
    check_split,
    drop_outside,
    load_image,
    make_options,
    require_dir,
)
from streamcount.training.datasets.base import Sample

FORMAT = FormatInfo("cells", "VGG synthetic cells (NNNcell.png + NNNdots.png)", "images",
                    "fixed", 2.0)
SPLITS = ("train", "val", "test")
POOL = range(1, 101)
TEST = range(101, 201)
_NAME = re.compile(r"^(\d+)(cell|dots)\.png$", re.IGNORECASE)


@dataclass
class Options:
    """Cells reader options.

    Attributes:
        n_train: Draw this many training images from the pool 1-100 (None: all of them).
        seed: Seed of the draw.
        red_min: Minimum red value of a dot pixel.
        other_max: Maximum green/blue value of a dot pixel.
    """

    n_train: int | None = None
    seed: int = 0
    red_min: int = 255
    other_max: int = 100


def _index(root: Path) -> dict[int, str]:
    root = require_dir(root, "VGG cells")
    cells: dict[int, str] = {}
    dots: dict[int, str] = {}
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m:
            (cells if m.group(2).lower() == "cell" else dots)[int(m.group(1))] = m.group(1)
    if not cells and not dots:
        raise InputError(
            f"{root} holds no NNNcell.png / NNNdots.png files: is it the VGG cells folder?"
        )
    lonely = sorted(set(cells) - set(dots))
    if lonely:
        raise InputError(
            f"{root}: {len(lonely)} image(s) without annotation, e.g. {cells[lonely[0]]}cell.png "
            f"has no {cells[lonely[0]]}dots.png; add the dots file or remove the image"
        )
    orphan = sorted(set(dots) - set(cells))
    if orphan:
        raise InputError(
            f"{root}: {len(orphan)} annotation(s) without image, e.g. {dots[orphan[0]]}dots.png "
            f"has no {dots[orphan[0]]}cell.png; add the image or remove the dots file"
        )
    return cells


def keys(root: Path, split: str, **opts: Any) -> list[str]:
    """Image stems (``"001"``) of a split; see the module docstring for the protocol."""
    check_split(split, SPLITS, "cells")
    o: Options = make_options(Options, opts, "cells")
    index = _index(Path(root))
    if split == "test":
        return [index[i] for i in sorted(index) if i in TEST]
    pool = [index[i] for i in sorted(index) if i in POOL]
    if o.n_train is None:
        return pool if split == "train" else []
    if not 0 < o.n_train <= len(pool):
        raise InputError(
            f"--n-train {o.n_train} is not possible: the cells training pool in {root} has "
            f"{len(pool)} images (standard protocol: 32 or 64 of images 1-100)"
        )
    rng = np.random.default_rng(o.seed)
    chosen = set(rng.choice(len(pool), size=o.n_train, replace=False).tolist())
    picked = [k for i, k in enumerate(pool) if (i in chosen) == (split == "train")]
    return sorted(picked)


_list_keys = keys


def dots_to_points(dots: np.ndarray, red_min: int = 255, other_max: int = 100) -> np.ndarray:
    """Points (x, y) of the red pixels of an RGB dots image."""
    r, g, b = (dots[:, :, i].astype(np.int32) for i in range(3))
    ys, xs = np.nonzero((r >= red_min) & (g <= other_max) & (b <= other_max))
    return np.stack([xs, ys], axis=1).astype(np.float32)


def read(root: Path, split: str, *, keys: list[str] | None = None, **opts: Any) -> Iterator[Sample]:
    """Yield cell images with their dot annotations.

    Args:
        root: Folder holding ``NNNcell.png`` / ``NNNdots.png``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        keys: Only these stems (default: the whole split).
        **opts: :class:`Options` fields.
    """
    root = Path(root)
    o: Options = make_options(Options, opts, "cells")
    names = keys if keys is not None else _list_keys(root, split, **opts)
    for stem in names:
        image = load_image(root / f"{stem}cell.png")
        dots = load_image(root / f"{stem}dots.png")
        if dots.shape != image.shape:
            raise InputError(
                f"{root / (stem + 'dots.png')} is {dots.shape[1]}x{dots.shape[0]} but its image "
                f"is {image.shape[1]}x{image.shape[0]}; the pair does not match"
            )
        pts = drop_outside(dots_to_points(dots, o.red_min, o.other_max), image.shape[:2], stem)
        yield Sample(name=stem, image=image, points=pts,
                     meta={"file": f"{stem}cell.png", "index": int(stem)})
