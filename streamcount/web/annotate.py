"""The point annotator of ``streamcount annotate``: one point per object on each image of a
folder, saved after every change to the points CSV that ``streamcount prepare points`` reads.

The CSV (``image,x,y``, 0-based pixel centres; an image marked as having no objects is one row
with empty ``x`` and ``y``) is rewritten whole through a temporary file and :func:`os.replace`
after each change, so a browser or server that dies loses at most the click in flight.

API: ``GET /api/images`` (names, sizes, point counts), ``GET /api/image/{name}`` (the file),
``GET /api/points/{name}``, ``PUT /api/points/{name}`` with ``{"points": [[x, y], ...]}``, and
with a model ``GET /api/hint/{name}`` (its density as a faint heatmap, its count in
``X-Count``).

Example:
    >>> import tempfile, cv2, numpy as np
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "a.png"), np.zeros((20, 30, 3), np.uint8))
    >>> store = PointStore(d)
    >>> store.set("a.png", [[3, 4], [10.5, 2]])
    2
    >>> (d / "points.csv").read_text().splitlines()
    ['image,x,y', 'a.png,3,4', 'a.png,10.5,2']
"""

from __future__ import annotations

import csv
import io
import logging
import math
import threading
from pathlib import Path
from typing import Any

from streamcount.errors import InputError
from streamcount.images import IMAGE_SUFFIXES
from streamcount.web.monitor import atomic_write

logger = logging.getLogger(__name__)

MAX_POINTS = 20_000  # per image: a dense crowd has a few thousand
MAX_IMAGES = 100_000


def _fmt(v: float) -> str:
    v = round(float(v), 2)
    return str(int(v)) if v.is_integer() else repr(v)


class PointStore:
    """The images of a folder and their points, kept in one CSV file.

    Args:
        folder: The images (this folder and its subfolders; names are relative paths).
        csv_path: The points file (default ``FOLDER/points.csv``); read when it exists.

    Raises:
        InputError: no such folder, no images in it, or an unreadable points file.
    """

    def __init__(self, folder: Path, csv_path: Path | None = None) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise InputError(f"{folder} is not a folder of images; give the folder "
                             "`streamcount frames` wrote")
        self.csv_path = Path(csv_path) if csv_path is not None else self.folder / "points.csv"
        files = sorted(p for p in self.folder.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in
                                   p.relative_to(self.folder).parts))
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}; grab some "
                             "with `streamcount frames SOURCE --out DIR`")
        if len(files) > MAX_IMAGES:
            raise InputError(f"{folder} holds {len(files)} images: at most {MAX_IMAGES}")
        self.files = {p.relative_to(self.folder).as_posix(): p for p in files}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.points: dict[str, list[list[float]]] = {}
        self.lock = threading.Lock()
        if self.csv_path.is_file() and self.csv_path.stat().st_size:
            self._load()

    def _load(self) -> None:
        from streamcount.training.datasets.points import parse_csv

        for name, entry in parse_csv(self.csv_path).items():
            key = name if name in self.files else None
            if key is None:
                logger.warning("%s: %s is not an image in %s; its points are kept as they are",
                               self.csv_path, name, self.folder)
                key = name
            self.points[key] = [[float(x), float(y)] for x, y in entry.points]
        logger.info("read %d annotated image(s) from %s", len(self.points), self.csv_path)

    def size(self, name: str) -> tuple[int, int]:
        """``(width, height)`` of image ``name`` (read once)."""
        if name not in self.sizes:
            import cv2

            img = cv2.imread(str(self.files[name]), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise InputError(f"{name}: unreadable image")
            self.sizes[name] = (int(img.shape[1]), int(img.shape[0]))
        return self.sizes[name]

    def check_name(self, name: str) -> str:
        """``name`` when it is one of the folder's images, else :class:`InputError` (a path
        outside the folder is never one of them)."""
        if name not in self.files:
            raise InputError(f"no image '{name[:200]}' in the annotated folder")
        return name

    def set(self, name: str, points: Any) -> int:
        """Replace the points of ``name`` and save the CSV; returns how many it has.

        Raises:
            InputError: an unknown image, or points that are not ``[[x, y], ...]`` inside it.
        """
        self.check_name(name)
        if not isinstance(points, list):
            raise InputError("'points' must be a list of [x, y] pairs")
        if len(points) > MAX_POINTS:
            raise InputError(f"{len(points)} points: at most {MAX_POINTS} per image")
        w, h = self.size(name)
        clean = []
        for i, p in enumerate(points):
            if not (isinstance(p, list | tuple) and len(p) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool)
                            and math.isfinite(v) for v in p)):
                raise InputError(f"point #{i + 1} is {str(p)[:40]}, expected [x, y] numbers")
            x, y = float(p[0]), float(p[1])
            if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
                raise InputError(f"point #{i + 1} ({x:g}, {y:g}) is outside the {w}x{h} image")
            clean.append([round(x, 2), round(y, 2)])
        with self.lock:
            self.points[name] = clean
            self.save()
        return len(clean)

    def csv_text(self) -> str:
        """The points file's content."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["image", "x", "y"])
        for name in sorted(self.points):
            pts = self.points[name]
            if not pts:
                w.writerow([name, "", ""])
            for x, y in pts:
                w.writerow([name, _fmt(x), _fmt(y)])
        return buf.getvalue()

    def save(self) -> None:
        """Rewrite the CSV atomically (temporary file + ``os.replace``)."""
        atomic_write(self.csv_path, self.csv_text())

    def listing(self) -> list[dict[str, Any]]:
        """Per image: name, number of points, whether it has been annotated."""
        return [{"name": n, "points": len(self.points.get(n, [])), "done": n in self.points}
                for n in self.files]


class DensityHints:
    """The model's density of each image as a faint heatmap (the annotator's optional hint).

    Args:
        counter: Anything with ``count(image) -> result`` with ``.count`` and ``.density``
            (a :class:`~streamcount.engine.Counter`).
        store: The images.
    """

    def __init__(self, counter: Any, store: PointStore) -> None:
        self.counter = counter
        self.store = store
        self.cache: dict[str, tuple[bytes, float]] = {}
        self.lock = threading.Lock()

    def get(self, name: str) -> tuple[bytes, float]:
        """``(RGBA PNG of the density, the model's count)`` of image ``name`` (computed once)."""
        import cv2
        import numpy as np

        with self.lock:
            if name not in self.cache:
                from streamcount.images import read_image

                res = self.counter.count(read_image(self.store.files[name]))
                d = np.clip(res.density / max(float(res.density.max()), 1e-9), 0, 1)
                u8 = (d * 255).astype(np.uint8)
                rgba = cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2BGRA)
                rgba[..., 3] = np.clip(d * 400, 0, 255).astype(np.uint8)
                png = cv2.imencode(".png", rgba)[1].tobytes()
                self.cache[name] = (png, float(res.count))
            return self.cache[name]


def annotate_app(store: PointStore, hints: DensityHints | None = None) -> Any:
    """The Starlette app of the annotator (with ``hints``: ``GET /api/hint/{name}``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from streamcount.web import STATIC
    from streamcount.web.server import BadRequest, exception_handlers, read_json

    nocache = {"Cache-Control": "no-store"}

    def name_of(request: Request) -> str:
        name = str(request.path_params["name"])
        try:
            return store.check_name(name)
        except InputError as exc:
            raise BadRequest(404, exc.message) from None

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "annotate.html", headers=nocache)

    async def images(request: Request) -> Response:
        return JSONResponse({"folder": str(store.folder), "csv": str(store.csv_path),
                             "images": store.listing(), "hint": hints is not None},
                            headers=nocache)

    async def hint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        name = name_of(request)
        if hints is None:
            raise BadRequest(404, "no model hint: start `streamcount annotate` with --model")
        try:
            png, count = await run_in_threadpool(hints.get, name)
        except InputError as exc:
            raise BadRequest(422, exc.message) from None
        return Response(png, media_type="image/png",
                        headers={**nocache, "X-Count": f"{count:.2f}"})

    async def image(request: Request) -> Response:
        return FileResponse(store.files[name_of(request)], headers=nocache)

    async def get_points(request: Request) -> Response:
        name = name_of(request)
        try:
            w, h = store.size(name)
        except InputError as exc:
            raise BadRequest(422, exc.message) from None
        return JSONResponse({"name": name, "width": w, "height": h,
                             "points": store.points.get(name, []),
                             "done": name in store.points}, headers=nocache)

    async def put_points(request: Request) -> Response:
        name = name_of(request)
        body = await read_json(request)
        if not isinstance(body, dict) or "points" not in body:
            raise BadRequest(400, 'expected {"points": [[x, y], ...]}')
        try:
            n = store.set(name, body["points"])
        except InputError as exc:
            raise BadRequest(400, exc.message) from None
        except OSError as exc:
            raise BadRequest(500, f"cannot write {store.csv_path}: {exc.strerror or exc}") \
                from None
        return JSONResponse({"name": name, "points": n, "csv": str(store.csv_path)})

    routes = [
        Route("/", index),
        Route("/api/images", images),
        Route("/api/image/{name:path}", image),
        Route("/api/hint/{name:path}", hint),
        Route("/api/points/{name:path}", get_points, methods=["GET"]),
        Route("/api/points/{name:path}", put_points, methods=["PUT", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    return Starlette(routes=routes, exception_handlers=exception_handlers())


__all__ = ["PointStore", "annotate_app"]
