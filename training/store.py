"""HDF5 storage of prepared splits.

One file per split, ``OUT/{split}.h5``::

    /                       attrs: source, root, split, scale, kernel, sigma (k, beta, ...),
                                   density_scale, n_samples, created_by, format_version
    /samples/00000          attrs: name, count
        image               uint8 H x W x C (gzip, chunked)
        density             float32 H x W (gzip); sums to count * density_scale
        points              float32 N x 2 (x, y), 0-based
        roi                 uint8 H x W (optional)

Files are written to ``{split}.h5.tmp`` and moved into place with :func:`os.replace`, so a
crash never leaves a half-written split behind.

Example:
    >>> with SplitWriter(tmp / "train.h5", {"source": "mall"}) as w:  # doctest: +SKIP
    ...     w.add(sample, density)
    >>> read_split(tmp / "train.h5")[0]["count"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from streamcount import __version__
from streamcount.errors import InputError, OutputError
from streamcount.training.datasets.base import Sample

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CREATED_BY = f"streamcount {__version__}"


def _h5py() -> Any:
    from streamcount.errors import require

    return require("h5py", "train")


class SplitWriter:
    """Stream samples into one split file, atomically.

    Args:
        path: Final file path (``.../train.h5``).
        attrs: Root attributes (source, root, split, scale, kernel parameters, ...).
        compression: gzip level for images and densities.
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any], compression: int = 4) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.attrs = dict(attrs)
        self.compression = compression
        self.n = 0
        self._file: Any = None

    def __enter__(self) -> SplitWriter:
        h5py = _h5py()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self.tmp, "w")
            self._samples = self._file.create_group("samples")
        except OSError as exc:
            self._discard()
            raise OutputError(f"cannot write {self.tmp}: {exc}") from None
        except BaseException:  # Ctrl-C while the file is being created: leave nothing behind
            self._discard()
            raise
        return self

    def _discard(self) -> None:
        """Close and delete the temporary file (``__exit__`` is not called when ``__enter__``
        fails, and a Ctrl-C can land anywhere)."""
        f, self._file = self._file, None
        try:
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def add(self, sample: Sample, density: np.ndarray) -> None:
        """Append one sample and its density map."""
        g = self._samples.create_group(f"{self.n:05d}")
        image = np.ascontiguousarray(sample.image, dtype=np.uint8)
        h, w = image.shape[:2]
        c = image.shape[2] if image.ndim == 3 else 1
        g.create_dataset("image", data=image, chunks=(min(h, 128), min(w, 128), c)[: image.ndim],
                         compression="gzip", compression_opts=self.compression)
        g.create_dataset("density", data=np.asarray(density, np.float32),
                         chunks=(min(h, 128), min(w, 128)),
                         compression="gzip", compression_opts=self.compression)
        g.create_dataset("points", data=np.asarray(sample.points, np.float32).reshape(-1, 2))
        if sample.roi is not None:
            g.create_dataset("roi", data=np.asarray(sample.roi, np.uint8), compression="gzip",
                             compression_opts=self.compression)
        g.attrs["name"] = sample.name
        g.attrs["count"] = len(sample.points)
        self.n += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        f = self._file
        if f is None:
            return
        if exc_type is not None:
            self._discard()
            return
        try:
            for key, value in self.attrs.items():
                f.attrs[key] = "" if value is None else value
            f.attrs["n_samples"] = self.n
            f.attrs["created_by"] = CREATED_BY
            f.attrs["format_version"] = FORMAT_VERSION
            f.close()
            self._file = None
            os.replace(self.tmp, self.path)
        except OSError as e:
            self._discard()
            raise OutputError(f"cannot write {self.path} (via {self.tmp}): {e}") from None
        except BaseException:  # Ctrl-C while closing: no half-written split, no stray .tmp
            self._discard()
            raise


def _open(path: str | Path) -> Any:
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist: run `streamcount prepare` first")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError(
            f"{path} is not an HDF5 file: give a split written by `streamcount prepare`"
        ) from None
    created = f.attrs.get("created_by", "")
    if isinstance(created, bytes):
        created = created.decode()
    if not str(created).startswith("streamcount") or "samples" not in f:
        f.close()
        raise InputError(
            f"{path} is HDF5 but not a streamcount split (no created_by/samples): "
            "re-create it with `streamcount prepare`"
        )
    return f


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def split_info(path: str | Path) -> dict[str, Any]:
    """Root attributes of a split file (source, split, scale, kernel, n_samples, ...).

    Raises:
        InputError: Missing file or not a streamcount split.
    """
    with _open(path) as f:
        return {k: _attr(v) for k, v in f.attrs.items()}


def read_split(path: str | Path) -> list[dict[str, Any]]:
    """Load every sample of a split file into memory.

    Args:
        path: A file written by :class:`SplitWriter`.

    Returns:
        One dict per sample with ``name``, ``count``, ``image`` (H x W x C uint8), ``density``
        (H x W float32), ``points`` (N x 2 float32) and ``roi`` (H x W uint8 or None).

    Raises:
        InputError: Missing file or not a streamcount split.
    """
    out = []
    with _open(path) as f:
        samples = f["samples"]
        for key in sorted(samples):
            g = samples[key]
            out.append({
                "name": _attr(g.attrs["name"]),
                "count": int(g.attrs["count"]),
                "image": g["image"][()],
                "density": g["density"][()],
                "points": g["points"][()],
                "roi": g["roi"][()] if "roi" in g else None,
            })
    return out
