"""Dataset readers: one small module per annotation format, all yielding :class:`Sample`.

A new format is one file in this folder. Every reader module exposes the same surface:

* ``FORMAT``: its :class:`FormatInfo` (name, one-line description, kind, default kernel);
  modules without one are helpers, not readers.
* ``SPLITS``: the standard splits it knows (``"train"``, ``"test"``; cells also ``"val"``).
* ``Options``: a dataclass of reader options (all with defaults).
* ``keys(root, split, **opts) -> list[str]``: the sample names in a split, in order, without
  loading images; an empty list when the split is absent (never an error).
* ``read(root, split, *, keys=None, **opts) -> Iterator[Sample]``: the samples, optionally
  only those named in ``keys``.

:func:`formats` finds the readers of this folder (importing them is light: no torch, h5py or
scipy at import time) and maps format names to their :class:`FormatInfo`. The helpers at the
bottom turn the usual failures (missing folder, corrupt image, ``.mat`` without the expected
keys) into :class:`~streamcount.errors.InputError`.

Example:
    >>> from streamcount.training.datasets import formats, read
    >>> sorted(formats())
    ['cells', 'mall', 'points', 'shanghaitech', 'ucsd']
    >>> for sample in read("mall", "/data/mall", "train"):  # doctest: +SKIP
    ...     print(sample.name, sample.count)
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from streamcount.errors import InputError
from streamcount.training.datasets.base import Sample

logger = logging.getLogger(__name__)

__all__ = [
    "FormatInfo",
    "Sample",
    "drop_outside",
    "formats",
    "get_reader",
    "keys",
    "load_image",
    "load_mat",
    "make_options",
    "mat_struct_field",
    "read",
    "require_dir",
]


@dataclass(frozen=True)
class FormatInfo:
    """A dataset format (a reader module's ``FORMAT``) and its preparation defaults.

    Attributes:
        name: Format name used on the command line.
        description: One line for ``--help``.
        kind: ``"video"`` (frames in time order: validation is a contiguous block) or
            ``"images"`` (independent images: validation is a seeded random subset).
        kernel: Default density kernel.
        sigma: Default sigma at scale 1 (output pixels; scaled with ``--scale``).
        module: Dotted path of the reader module (filled in by :func:`formats`).
    """

    name: str
    description: str
    kind: str
    kernel: str
    sigma: float
    module: str = ""

    def load(self) -> ModuleType:
        """Import and return the reader module."""
        return importlib.import_module(self.module)


@functools.cache
def formats() -> dict[str, FormatInfo]:
    """The reader modules of this folder by format name, in name order.

    Raises:
        InputError: Two readers claim the same name, or a kind is neither video nor images.
    """
    found: dict[str, FormatInfo] = {}
    for m in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{m.name}")
        info = getattr(module, "FORMAT", None)
        if not isinstance(info, FormatInfo):
            continue  # a helper module
        if info.name in found or info.kind not in ("video", "images"):
            raise InputError(f"dataset reader {module.__name__}: duplicate name or bad kind "
                             f"in {info}")
        found[info.name] = replace(info, module=module.__name__)
    return dict(sorted(found.items()))


def get_reader(name: str) -> ModuleType:
    """Return the reader module of a format.

    Raises:
        InputError: Unknown format name.
    """
    try:
        info = formats()[name]
    except KeyError:
        raise InputError(
            f"unknown dataset format {name!r}: choose one of {', '.join(formats())}"
        ) from None
    return info.load()


def keys(name: str, root: str | Path, split: str, **opts: Any) -> list[str]:
    """Sample names of a split of a dataset in format ``name`` (see module docstring)."""
    return get_reader(name).keys(Path(root), split, **opts)


def read(name: str, root: str | Path, split: str, **opts: Any) -> Iterator[Sample]:
    """Samples of a split of a dataset in format ``name`` (see module docstring)."""
    return get_reader(name).read(Path(root), split, **opts)


# --------------------------------------------------------------------------- helpers


def make_options(cls: type, opts: dict[str, Any], fmt: str) -> Any:
    """Build a reader's ``Options`` dataclass, ignoring ``None`` values.

    Raises:
        InputError: An option the format does not know.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(k for k, v in opts.items() if k not in known and v is not None)
    if unknown:
        raise InputError(
            f"option(s) {', '.join(unknown)} do not apply to the {fmt} format; "
            f"it accepts: {', '.join(sorted(known)) or 'none'}"
        )
    return cls(**{k: v for k, v in opts.items() if k in known and v is not None})


def check_split(split: str, splits: tuple[str, ...], fmt: str) -> None:
    """Raise :class:`InputError` when ``split`` is not one of ``splits``."""
    if split not in splits:
        raise InputError(f"the {fmt} format has no split {split!r}: use one of {splits}")


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise a helpful :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} folder {path} does not exist: check --root")
    if not path.is_dir():
        raise InputError(f"{what} {path} is not a folder: --root must name the dataset folder")
    return path


def load_image(path: Path, grey: bool = False) -> np.ndarray:
    """Read an image as ``H x W x 3`` RGB uint8 (``H x W x 1`` when ``grey``).

    Raises:
        InputError: Missing or undecodable file.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {path} does not exist: restore it or remove its annotation")
    data = np.fromfile(str(path), dtype=np.uint8)
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    img = cv2.imdecode(data, flag) if data.size else None
    if img is None:
        raise InputError(
            f"cannot decode image {path}: the file is corrupt or not an image; "
            "re-download it or remove it"
        )
    if grey:
        return np.ascontiguousarray(img[:, :, None])
    return np.ascontiguousarray(img[:, :, ::-1])


def load_mat(path: Path, required: tuple[str, ...] = (), hint: str = "") -> dict[str, Any]:
    """Load a MATLAB ``.mat`` file with :func:`scipy.io.loadmat`, checking top-level keys.

    Raises:
        InputError: Missing, unreadable (incl. v7.3 HDF5) or lacking a required key.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise InputError(f"annotation file {path} does not exist{': ' + hint if hint else ''}")
    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise InputError(
            f"{path} is a MATLAB v7.3 file, which this reader does not support: "
            "re-save it in MATLAB with save(..., '-v7')"
        ) from None
    except Exception as exc:  # scipy raises many types for corrupt files
        raise InputError(f"cannot read {path} as a .mat file ({exc}); re-download it") from None
    missing = [k for k in required if k not in mat]
    if missing:
        have = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
        raise InputError(
            f"{path} has no variable {', '.join(missing)} (it holds: {have}); "
            f"is it the right file?{' ' + hint if hint else ''}"
        )
    return mat


def mat_struct_field(value: Any, field_name: str, path: Path, what: str) -> Any:
    """Dig ``field_name`` out of a loadmat struct, unwrapping 1x1 object/struct nesting.

    Handles both ``s[0, 0][field]`` and ``s[field][0, 0]`` nesting.

    Raises:
        InputError: The field is absent.
    """
    v = value
    for _ in range(4):
        if isinstance(v, np.ndarray) and v.dtype.names and field_name in v.dtype.names:
            out = v[field_name]
            while isinstance(out, np.ndarray) and out.dtype == object and out.size == 1:
                out = out.reshape(-1)[0]
            return out
        if isinstance(v, np.ndarray) and v.size == 1 and (v.dtype == object or v.dtype.names):
            v = v.reshape(-1)[0]
            continue
        break
    raise InputError(f"{path}: {what} has no field '{field_name}'; is it the right file?")


def as_points(arr: Any, path: Path, what: str, one_based: bool = True) -> np.ndarray:
    """Convert an annotation array to ``N x 2`` float32 (x, y), 0-based.

    Raises:
        InputError: Not an ``N x >=2`` numeric array.
    """
    a = np.asarray(arr)
    if a.size == 0:
        return np.zeros((0, 2), np.float32)
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {what} is not numeric") from None
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError(f"{path}: {what} has shape {a.shape}, expected N x 2 (x, y) points")
    pts = a[:, :2] - (1.0 if one_based else 0.0)
    return pts.astype(np.float32)


def drop_outside(points: np.ndarray, hw: tuple[int, int], name: str,
                 tolerance: float = 1.0) -> np.ndarray:
    """Keep the points inside an ``H x W`` image.

    Points at most ``tolerance`` pixels beyond the border (annotators clicking on the edge,
    1-based/continuous coordinate slop) are moved onto the border pixel; points further out
    are dropped with a warning that names the image.
    """
    from streamcount.training.density import points_inside

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    h, w = hw
    near = (
        np.isfinite(pts).all(axis=1)
        & (pts[:, 0] >= -0.5 - tolerance) & (pts[:, 0] < w - 0.5 + tolerance)
        & (pts[:, 1] >= -0.5 - tolerance) & (pts[:, 1] < h - 0.5 + tolerance)
    )
    pts = pts.copy()
    pts[near, 0] = np.clip(pts[near, 0], 0.0, w - 1.0)
    pts[near, 1] = np.clip(pts[near, 1], 0.0, h - 1.0)
    keep = near & points_inside(pts, hw)
    if not keep.all():
        bad = pts[~keep]
        logger.warning(
            "%s: dropped %d point(s) outside the %dx%d image, e.g. (%.1f, %.1f)",
            name, int((~keep).sum()), w, h, float(bad[0, 0]), float(bad[0, 1]),
        )
    return np.ascontiguousarray(pts[keep], dtype=np.float32)
