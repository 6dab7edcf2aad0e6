"""Your own camera: a folder of images plus point annotations in a common export format.

Supported annotation files (the format is detected from the content):

* CSV with a header ``image,x,y``: one row per point, pixel coordinates; an image with no
  points is one row with empty ``x`` and ``y``.
* JSON ``{"frame_0001.jpg": [[x, y], ...], ...}``, pixel coordinates.
* CVAT "for images" XML: ``<image name="..."><points label="..." points="x1,y1;x2,y2"/>``.
* Label Studio JSON export: a list of tasks with ``data.image`` and
  ``annotations[0].result[]`` items of type ``keypointlabels`` whose ``value.x`` / ``value.y``
  are percentages of the image width / height.

CSV and JSON coordinates are 0-based pixel centres; CVAT and Label Studio coordinates are
continuous (0 = the image's left/top edge) and are shifted by half a pixel. Image names are
paths relative to ``root`` or bare file names found anywhere under it. Points outside their
image are dropped with a warning; images in the folder without any annotation are skipped with
a warning.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from streamcount.errors import InputError
from streamcount.images import IMAGE_SUFFIXES
from streamcount.training.datasets import (
    FormatInfo,
    check_split,
    drop_outside,
    load_image,
    make_options,
    require_dir,
)
from streamcount.training.datasets.base import Sample

logger = logging.getLogger(__name__)

FORMAT = FormatInfo("points", "your own images + points (CSV, JSON, CVAT XML, Label Studio JSON)",
                    "images", "fixed", 4.0)
SPLITS = ("train", "test")
_CANDIDATES = ("annotations.csv", "annotations.json", "annotations.xml", "points.csv",
               "points.json")


@dataclass
class Options:
    """Points reader options.

    Attributes:
        annotations: The annotation file (default: found in ``root``).
        label: Only points with this label (CVAT, Label Studio); None keeps all.
    """

    annotations: Path | None = None
    label: str | None = None


@dataclass
class _Entry:
    points: np.ndarray  # N x 2
    unit: str  # "pixel" (0-based centres), "edge" (continuous), "percent"
    source: str  # where it was defined, for messages


# ----------------------------------------------------------------------------- parsing


def find_annotations(root: Path) -> Path:
    """Locate the annotation file in ``root`` when ``--annotations`` is not given."""
    for name in _CANDIDATES:
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.iterdir() if p.suffix.lower() in {".csv", ".json", ".xml"})
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"no annotation file in {root}: pass --annotations FILE (CSV image,x,y; JSON; "
            "CVAT XML; Label Studio JSON)"
        )
    raise InputError(
        f"{root} holds several possible annotation files ({', '.join(p.name for p in found)}): "
        "choose one with --annotations"
    )


def _num(value: Any, where: str, what: str) -> float:  # any parsed value; None too
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what}={value!r} is not a number; fix or delete it") from None
    if not np.isfinite(v):
        raise InputError(f"{where}: {what}={value!r} is not a finite number")
    return v


def parse_csv(path: Path) -> dict[str, _Entry]:
    """Parse a CSV ``image,x,y`` file (see module docstring)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        cols = [c.strip().lower() for c in header] if header else []
        if not {"image", "x", "y"} <= set(cols):
            raise InputError(
                f"{path}: the first line must be the header image,x,y (found {header}); "
                "one row per point"
            )
        ii, ix, iy = cols.index("image"), cols.index("x"), cols.index("y")
        acc: dict[str, list[tuple[float, float]]] = {}
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{path.name} line {line_no}"
            if len(row) <= max(ii, ix, iy):
                raise InputError(f"{where}: expected image,x,y, got {','.join(row)!r}")
            image, xs, ys = row[ii].strip(), row[ix].strip(), row[iy].strip()
            if not image:
                raise InputError(f"{where}: the image column is empty")
            pts = acc.setdefault(image, [])
            if not xs and not ys:
                continue  # an image with no points
            if not xs or not ys:
                raise InputError(f"{where}: x and y must both be given or both be empty")
            pts.append((_num(xs, where, "x"), _num(ys, where, "y")))
    return {k: _Entry(np.asarray(v, np.float64).reshape(-1, 2), "pixel", path.name)
            for k, v in acc.items()}


def parse_simple_json(data: dict[str, Any], path: Path) -> dict[str, _Entry]:
    """Parse ``{"image": [[x, y], ...]}``."""
    out = {}
    for image, pts in data.items():
        where = f"{path.name} entry {image!r}"
        if not isinstance(pts, list):
            raise InputError(f"{where}: expected a list of [x, y] pairs, got {type(pts).__name__}")
        arr = []
        for j, p in enumerate(pts):
            if not (isinstance(p, list | tuple) and len(p) == 2):
                raise InputError(f"{where}: point {j} is {p!r}, expected [x, y]")
            arr.append((_num(p[0], where, f"point {j} x"), _num(p[1], where, f"point {j} y")))
        out[str(image)] = _Entry(np.asarray(arr, np.float64).reshape(-1, 2), "pixel", where)
    return out


def parse_cvat(path: Path, label: str | None) -> dict[str, _Entry]:
    """Parse a CVAT "for images" XML export."""
    import xml.etree.ElementTree as ET

    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise InputError(f"{path} is not valid XML ({exc}); re-export it from CVAT") from None
    images = tree.getroot().iter("image")
    out: dict[str, _Entry] = {}
    for img in images:
        name = img.get("name")
        if not name:
            raise InputError(f"{path}: an <image> element has no name attribute")
        pts = []
        for el in img.iter("points"):
            if label is not None and el.get("label") != label:
                continue
            raw = el.get("points", "")
            for pair in filter(None, (s.strip() for s in raw.split(";"))):
                parts = pair.split(",")
                where = f"{path.name} image {name!r}"
                if len(parts) != 2:
                    raise InputError(f"{where}: bad point {pair!r}, expected x,y")
                pts.append((_num(parts[0], where, "x"), _num(parts[1], where, "y")))
        out[name] = _Entry(np.asarray(pts, np.float64).reshape(-1, 2), "edge", path.name)
    if not out:
        raise InputError(f"{path} has no <image> elements: export as 'CVAT for images 1.1'")
    return out


def _ls_image_name(ref: str) -> str:
    parsed = urlparse(ref)
    q = parse_qs(parsed.query)
    if "d" in q:  # local-files storage: /data/local-files/?d=folder/image.jpg
        return unquote(q["d"][0])
    return unquote(Path(parsed.path).name)


def parse_label_studio(tasks: list[Any], path: Path, label: str | None) -> dict[str, _Entry]:
    """Parse a Label Studio JSON export (list of tasks with keypoint results)."""
    out: dict[str, _Entry] = {}
    for t, task in enumerate(tasks):
        where = f"{path.name} task {task.get('id', t) if isinstance(task, dict) else t}"
        if not isinstance(task, dict) or "data" not in task:
            raise InputError(f"{where}: not a Label Studio task (no 'data')")
        data = task["data"]
        ref = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
        if not ref:
            raise InputError(f"{where}: data has no image reference")
        name = _ls_image_name(ref)
        anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not anns:
            logger.warning("%s (%s) has no annotation; skipped", where, name)
            continue
        pts = []
        for item in anns[0].get("result") or []:
            if item.get("type") not in ("keypointlabels", "keypoint"):
                continue
            value = item.get("value") or {}
            labels = value.get("keypointlabels") or []
            if label is not None and label not in labels:
                continue
            pts.append((_num(value.get("x"), where, "value.x"),
                        _num(value.get("y"), where, "value.y")))
        out[name] = _Entry(np.asarray(pts, np.float64).reshape(-1, 2), "percent", where)
    return out


def parse_annotations(path: Path, label: str | None = None) -> dict[str, _Entry]:
    """Parse an annotation file, detecting its format from its content."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"annotation file {path} does not exist: check --annotations")
    head = path.read_bytes()[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_cvat(path, label)
    if head[:1] in (b"{", b"["):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc})") from None
        if isinstance(data, dict) and "data" in data and "annotations" in data:
            data = [data]
        if isinstance(data, list):
            return parse_label_studio(data, path, label)
        if isinstance(data, dict):
            return parse_simple_json(data, path)
        raise InputError(f"{path}: unexpected JSON layout; see `streamcount prepare --help`")
    return parse_csv(path)


# ----------------------------------------------------------------------------- reader


def _image_index(root: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            index.setdefault(p.name, []).append(p)
    return index


def _resolve(root: Path, name: str, index: dict[str, list[Path]]) -> Path | None:
    direct = root / name
    if direct.is_file():
        return direct
    base = Path(name).name
    for cand in (base, re.sub(r"^[0-9a-f]{8}-", "", base)):
        hits = index.get(cand, [])
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InputError(
                f"annotation image {name!r} matches {len(hits)} files under {root} "
                f"({hits[0]}, {hits[1]}, ...): use paths relative to --root"
            )
    return None


@dataclass
class _Dataset:
    entries: dict[str, _Entry]
    paths: dict[str, Path]


def _load(root: Path, o: Options) -> _Dataset:
    root = require_dir(Path(root), "image")
    ann = Path(o.annotations) if o.annotations is not None else find_annotations(root)
    entries = parse_annotations(ann, o.label)
    if not entries:
        raise InputError(f"{ann} annotates no images: nothing to prepare")
    index = _image_index(root)
    paths: dict[str, Path] = {}
    missing = []
    for name in entries:
        p = _resolve(root, name, index)
        if p is None:
            missing.append(name)
        else:
            paths[name] = p
    if missing:
        raise InputError(
            f"{len(missing)} annotated image(s) not found under {root}, e.g. {missing[0]!r} "
            f"(from {entries[missing[0]].source}); check --root or the names in {ann.name}"
        )
    used = {p.resolve() for p in paths.values()}
    extra = sorted(str(p.relative_to(root)) for ps in index.values() for p in ps
                   if p.resolve() not in used)
    if extra:
        logger.warning(
            "%d image(s) under %s have no annotation in %s and are skipped, e.g. %s",
            len(extra), root, ann.name, extra[0],
        )
    return _Dataset(entries, paths)


def keys(root: Path, split: str, **opts: Any) -> list[str]:
    """Annotated image names; everything is ``"train"`` (``"test"`` is empty)."""
    check_split(split, SPLITS, "points")
    o: Options = make_options(Options, opts, "points")
    if split == "test":
        return []
    return sorted(_load(Path(root), o).entries)


def read(root: Path, split: str, *, keys: list[str] | None = None, **opts: Any) -> Iterator[Sample]:
    """Yield your images with their points (0-based pixel centres).

    Args:
        root: The image folder.
        split: ``"train"`` (all annotated images) or ``"test"`` (empty).
        keys: Only these image names (default: all).
        **opts: :class:`Options` fields.
    """
    check_split(split, SPLITS, "points")
    o: Options = make_options(Options, opts, "points")
    if split == "test" and keys is None:
        return
    root = Path(root)
    ds = _load(root, o)
    names = keys if keys is not None else sorted(ds.entries)
    for name in names:
        if name not in ds.entries:
            raise InputError(f"{name!r} is not in the annotation file")
        entry = ds.entries[name]
        image = load_image(ds.paths[name])
        h, w = image.shape[:2]
        pts = entry.points.copy()
        if entry.unit == "percent":
            pts[:, 0] = pts[:, 0] / 100.0 * w - 0.5
            pts[:, 1] = pts[:, 1] / 100.0 * h - 0.5
        elif entry.unit == "edge":
            pts -= 0.5
        rel = ds.paths[name].relative_to(root).as_posix()
        pts = drop_outside(pts.astype(np.float32), (h, w), rel)
        yield Sample(name=rel, image=image, points=pts,
                     meta={"file": str(ds.paths[name]), "annotations": entry.source})
