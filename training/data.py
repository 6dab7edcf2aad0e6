"""Training data in memory and augmentations that keep counts right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamcount.errors import InputError
from streamcount.settings import check_types
from streamcount.training.density import points_inside, resize_density, scale_points


@dataclass
class AugmentConfig:
    """Count-preserving augmentations.

    Attributes:
        hflip: Random horizontal flips (safe for every dataset).
        vflip: Random vertical flips (cells, top-down views; not street scenes).
        transpose: Random transposition (x and y swapped) of square views; with ``hflip`` and
            ``vflip`` it gives all eight 90-degree rotations and mirror images (cells,
            top-down views). Views that are not square are left as they are.
        scale_jitter: Resize by a factor in ``[1 - j, 1 + j]``; density mass is kept.
        scale_prob: Share of samples that ``scale_jitter`` resizes; the others keep the
            prepared scale. Resampling softens an image, and a model that only ever sees
            resampled images learns to count soft images: on the crisp, unresampled images
            that evaluation and the engine feed it, it over-counted by 10-30%. Below 1, the
            model sees both and must count them alike.
        brightness: Multiply pixels by a factor in ``[1 - b, 1 + b]``.
        contrast: Blend with the mean grey by a factor in ``[1 - c, 1 + c]``.
        gray_prob: Probability of turning a colour patch grey (camera night modes).
        blur_prob: Probability of a Gaussian blur (an out-of-focus or low-resolution camera).
            Without it a model trained on sharp photos loses about a third of the count on a
            1 px blur (``benchmarks/robustness.py``).
        blur_sigma: Largest blur sigma in pixels; each blurred patch draws one in
            ``[0.3, blur_sigma]``.
        jpeg_prob: Probability of a JPEG round trip (compressed streams).
        jpeg_quality: Lowest JPEG quality; each compressed patch draws one in
            ``[jpeg_quality, 95]``.
        dense_crop_prob: Probability that a patch is the densest (highest count) of
            ``dense_crop_tries`` random positions instead of one random position: more views of
            dense groups, which a model trained on uniform crops counts short when a held-back
            frame holds denser groups than most training views (Mall frames 301-400).
        dense_crop_tries: Random positions compared for a dense patch.
        mosaic_prob: Probability that a view is a mosaic: split at a random point into four
            rectangles, each a random crop of a randomly drawn training image (the item's own
            image first), pixels and density alike, so the count is the four crops' sum. It
            keeps the view's size (the patch, or the whole image), so a model trained on whole
            images still sees whole-image borders, while the pairings of objects, backgrounds
            and counts seen in training multiply (for scenes of independent objects on a plain
            background, such as cells). Mosaic parts are not scale-jittered.
        overlay_prob: Probability that a view (not a mosaic) gets a second view added to it: a
            random crop of a randomly drawn training image, randomly mirrored, less its own
            background (a grey-level opening larger than an object, smoothed), added to the
            pixels and clipped, its density and points added too. For images where light adds
            up (fluorescence microscopy): the sum is a plausible scene denser than any
            training image, with overlaps brightening as they do under the microscope. Not for
            photographs, where objects occlude instead of adding. On the VGG synthetic cells
            it made the held-back images' under-count worse (cells card, session 22).
        overlay_background: Side in pixels of the opening that estimates each view's
            background; larger than one object.
        overlay_light_power: How bright the sum is: its light (pixels above the background,
            measured by the same opening) is made the first view's times the ratio of the
            counts to this power. 1 keeps each object's light as it is (a plain sum); below 1,
            denser sums are dimmer per object, as in images normalised for exposure. In the
            VGG synthetic cells the light so measured grows as the count to the power 0.65
            (1.28 million grey levels at 99 cells on average, 2.42 million at 263).
        occlude_prob: Probability that a view gets occluders: a share of its annotated
            objects (``occlude_share``) have their head covered, partly or wholly, by a patch
            of the same view taken where nothing is annotated, while their density stays. For
            cameras where something in front hides people the annotators still marked (the
            Mall camera's palm tree hides the heads of people seated behind it); needs the
            point annotations of the prepared data.
        occlude_share: Share of a view's objects covered when it gets occluders.
    """

    hflip: bool = True
    vflip: bool = False
    transpose: bool = False
    scale_jitter: float = 0.0
    scale_prob: float = 1.0
    brightness: float = 0.0
    contrast: float = 0.0
    gray_prob: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: float = 1.5
    jpeg_prob: float = 0.0
    jpeg_quality: int = 30
    dense_crop_prob: float = 0.0
    dense_crop_tries: int = 4
    mosaic_prob: float = 0.0
    overlay_prob: float = 0.0
    overlay_background: int = 15
    overlay_light_power: float = 1.0
    occlude_prob: float = 0.0
    occlude_share: float = 0.3

    def __post_init__(self) -> None:
        check_types(self, "augmentation setting")
        probabilities = ("scale_prob", "gray_prob", "blur_prob", "jpeg_prob", "dense_crop_prob",
                         "mosaic_prob", "overlay_prob", "occlude_prob", "occlude_share")
        factors = ("scale_jitter", "brightness", "contrast")  # x in [1 - j, 1 + j], above 0
        bad = [f"{k} = {getattr(self, k)} (a probability: 0 to 1)" for k in probabilities
               if not 0.0 <= getattr(self, k) <= 1.0]
        bad += [f"{k} = {getattr(self, k)} (a relative range: 0 to below 1)" for k in factors
                if not 0.0 <= getattr(self, k) < 1.0]
        if not 0.3 <= self.blur_sigma <= 10.0:
            bad.append(f"blur_sigma = {self.blur_sigma} (pixels: 0.3 to 10)")
        if not 1 <= self.jpeg_quality <= 95:
            bad.append(f"jpeg_quality = {self.jpeg_quality} (a JPEG quality: 1 to 95)")
        if not 2 <= self.dense_crop_tries <= 64:
            bad.append(f"dense_crop_tries = {self.dense_crop_tries} (positions: 2 to 64)")
        if not 0.0 <= self.overlay_light_power <= 2.0:
            bad.append(f"overlay_light_power = {self.overlay_light_power} (a power: 0 to 2)")
        if not 3 <= self.overlay_background <= 255:
            bad.append(f"overlay_background = {self.overlay_background} (pixels: 3 to 255)")
        if bad:
            raise InputError(f"augmentation setting out of range: {'; '.join(bad)}")


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``img`` (``H x W x C`` uint8, BGR or grey) as JPEG at ``quality`` and decode it.

    Example:
        >>> img = np.full((16, 16, 3), 128, np.uint8)
        >>> jpeg_round_trip(img, 50).shape
        (16, 16, 3)
    """
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return img
    flag = cv2.IMREAD_GRAYSCALE if img.shape[2] == 1 else cv2.IMREAD_COLOR
    out = cv2.imdecode(buf, flag)
    return img if out is None else out.reshape(img.shape)


def mirror(
    img: np.ndarray, den: np.ndarray, pts: np.ndarray | None, axis: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``img`` (``H x W x C``), its density and its ``N x 2`` (x, y) points (or ``None``)
    mirrored: ``axis`` 1 left to right, 0 top to bottom.

    Example:
        >>> den = np.zeros((2, 3), np.float32); den[0, 0] = 1
        >>> _, d, p = mirror(np.zeros((2, 3, 1)), den, np.array([[0.0, 0.0]]), axis=1)
        >>> float(d[0, 2]), p.tolist()
        (1.0, [[2.0, 0.0]])
    """
    img, den = np.flip(img, axis), np.flip(den, axis)
    if pts is None:
        return img, den, None
    if axis == 1:
        return img, den, np.stack([den.shape[1] - 1 - pts[:, 0], pts[:, 1]], axis=1)
    return img, den, np.stack([pts[:, 0], den.shape[0] - 1 - pts[:, 1]], axis=1)


def normalize_image(img: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """uint8 ``H x W x C`` to float32 ``1 x C x H x W``, ``(x / 255 - mean) / std``."""
    x = (img.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def head_sigma(den: np.ndarray, x: int, y: int) -> float:
    """The standard deviation in pixels of the density kernel at pixel ``(x, y)``, read off the
    peak (a 2-D Gaussian of mass 1 peaks at ``1 / (2 pi sigma^2)``); overlapping kernels read
    smaller. Clipped to 0.5-32 px.

    Example:
        >>> d = np.zeros((21, 21), np.float32); d[10, 10] = 1.0
        >>> d = cv2.GaussianBlur(d, (0, 0), 3.0)
        >>> round(head_sigma(d, 10, 10), 1)
        3.0
    """
    y0, x0 = max(0, y - 1), max(0, x - 1)
    peak = float(den[y0 : y + 2, x0 : x + 2].max())
    return float(np.clip(1.0 / np.sqrt(2.0 * np.pi * max(peak, 1e-9)), 0.5, 32.0))


def occlude(img: np.ndarray, den: np.ndarray, pts: np.ndarray, share: float,
            rng: np.random.Generator, tries: int = 6) -> np.ndarray:
    """``img`` with the heads of a random ``share`` of the objects at ``pts`` covered.

    Each occluder is a square of ``0.8-2`` head sizes (a head taken as 4 kernel sigmas,
    :func:`head_sigma`), centred within 0.4 of its side of the point, so it hides part of the
    head or all of it and leaves most of the body. It is filled with a patch of the same view
    taken where the density holds under 0.02 objects (the densest views may find no such
    place in ``tries`` draws: that object stays visible). The density is not changed: the
    covered objects are still there. See ``AugmentConfig.occlude_prob``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        >>> den = np.zeros((64, 64), np.float32); den[10, 10] = 1.0
        >>> den = cv2.GaussianBlur(den, (0, 0), 2.0)
        >>> out = occlude(img, den, np.array([[10.0, 10.0]], np.float32), 1.0, rng)
        >>> changed = np.argwhere((out != img).any(axis=2))
        >>> len(changed) > 0, bool(np.abs(changed - 10).max() <= 16)
        (True, True)
    """
    h, w = den.shape
    out = img.copy()
    chosen = pts[rng.random(len(pts)) < share] if len(pts) else pts
    if len(chosen) == 0:
        return out
    integral = cv2.integral(den.astype(np.float64))
    for px, py in chosen:
        x = int(np.clip(round(float(px)), 0, w - 1))
        y = int(np.clip(round(float(py)), 0, h - 1))
        side = round(4.0 * head_sigma(den, x, y) * rng.uniform(0.8, 2.0))
        side = max(2, min(side, h // 2, w // 2))
        cx = x + rng.uniform(-0.4, 0.4) * side
        cy = y + rng.uniform(-0.4, 0.4) * side
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        for _ in range(tries):
            sx, sy = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            held = (integral[sy + side, sx + side] - integral[sy, sx + side]
                    - integral[sy + side, sx] + integral[sy, sx])
            if held < 0.02:
                out[y0 : y0 + side, x0 : x0 + side] = img[sy : sy + side, sx : sx + side]
                break
    return out


def spread_order(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Image indices for ``n`` items, each image ``n * weight`` times (rounded up or down).

    The whole part of each image's quota is given outright; the items left over go to distinct
    images, each included with probability equal to its quota's fractional part (systematic
    sampling over the images in a random order), so the expected number of times an image
    appears is exactly ``n * weight``.

    Args:
        weights: Sampling probability of each image (sums to 1).
        n: Items to fill.
        rng: Draws the left-over items.

    Returns:
        ``n`` image indices, grouped by image (shuffle them for an epoch's order).

    Example:
        >>> order = spread_order(np.array([0.5, 0.25, 0.25]), 8, np.random.default_rng(0))
        >>> np.bincount(order).tolist()
        [4, 2, 2]
    """
    quota = np.asarray(weights, np.float64) * n
    base = np.floor(quota).astype(np.int64)
    rest = n - int(base.sum())
    if rest > 0:
        perm = rng.permutation(len(quota))
        edges = np.cumsum((quota - base)[perm])
        edges *= rest / edges[-1]  # the fractional parts add up to ``rest``, bar rounding
        hits = np.searchsorted(edges, rng.uniform() + np.arange(rest), side="right")
        base[perm[np.minimum(hits, len(quota) - 1)]] += 1
    return np.repeat(np.arange(len(quota)), base)


class PatchDataset:
    """Random patches (or whole images) with count-preserving augmentation.

    Each epoch the trainer calls :meth:`set_epoch` with a seed; item ``k`` then draws from image
    ``order[k]`` with its own RNG, so an epoch is reproducible with any number of workers and a
    resumed run continues exactly.

    Args:
        images: ``H x W x C`` uint8 arrays.
        densities: ``H x W`` float32 arrays integrating to the counts.
        patch: Patch side in pixels; 0 trains on whole images (needs equal sizes).
        samples_per_epoch: Items per epoch.
        aug: Augmentations.
        mean: Per-channel mean of pixels / 255.
        std: Per-channel std of pixels / 255.
        density_scale: Targets are ``density * density_scale``.
        weights: Optional sampling probability of each image (several datasets mixed in
            chosen shares); default: every image equally often.
        spread: With ``weights``: give every image its share of each epoch's items (rounded
            up or down at random, :func:`spread_order`) in a shuffled order, rather than
            drawing each item independently. An image of weight ``w`` then appears ``n * w``
            times an epoch, as the unweighted order shows each image equally often.
        points: Optional ``N x 2`` (x, y) point annotations of each image. When given, an item
            is ``(x, y, points)``: the points moved by the same resize, crop and flips as the
            pixels, those outside the patch dropped (for losses on the points themselves,
            such as the Bayesian loss); batch such items with :func:`collate_points`.
        return_points: Whether items carry their points (default: when ``points`` are
            given). ``False`` keeps the points for augmentations that need them
            (``occlude_prob``) while items stay ``(x, y)``.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        densities: list[np.ndarray],
        patch: int,
        samples_per_epoch: int,
        aug: AugmentConfig,
        mean: np.ndarray,
        std: np.ndarray,
        density_scale: float,
        weights: np.ndarray | None = None,
        points: list[np.ndarray] | None = None,
        return_points: bool | None = None,
        spread: bool = False,
    ) -> None:
        if points is not None and len(points) != len(images):
            raise ValueError(f"{len(points)} point sets for {len(images)} images")
        if aug.occlude_prob > 0 and points is None:
            raise InputError("occlude_prob needs the point annotations of the prepared data")
        self.images = images
        self.points = points
        self.return_points = points is not None if return_points is None else return_points
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        if self.weights is not None:
            self.weights = self.weights / self.weights.sum()
        self.densities = densities
        self.patch = patch
        self.n = samples_per_epoch
        self.aug = aug
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)
        self.density_scale = density_scale
        self.spread = spread
        self.order = np.arange(self.n) % len(images)
        self.seeds = np.arange(self.n)

    def set_epoch(self, seed: int) -> None:
        """Draw this epoch's image order and per-item seeds from ``seed``."""
        rng = np.random.default_rng(seed)
        if self.weights is None:
            reps = -(-self.n // len(self.images))
            perms = [rng.permutation(len(self.images)) for _ in range(reps)]
            self.order = np.concatenate(perms)[: self.n]
        elif self.spread:
            self.order = rng.permutation(spread_order(self.weights, self.n, rng))
        else:
            self.order = rng.choice(len(self.images), size=self.n, p=self.weights)
        self.seeds = rng.integers(0, 2**31 - 1, size=self.n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(int(self.seeds[k]))
        img = self.images[self.order[k]]
        den = self.densities[self.order[k]]
        pts = None if self.points is None else self.points[self.order[k]].reshape(-1, 2)
        a = self.aug
        mosaic = a.mosaic_prob > 0 and rng.random() < a.mosaic_prob
        if mosaic:  # already the patch's size
            img, den, pts = self._mosaic(img, den, pts, rng)
        elif a.scale_jitter > 0 and (a.scale_prob >= 1.0 or rng.random() < a.scale_prob):
            f = rng.uniform(1 - a.scale_jitter, 1 + a.scale_jitter)
            h, w = den.shape
            nh, nw = max(8, round(h * f)), max(8, round(w * f))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            if img.ndim == 2:
                img = img[..., None]
            den = resize_density(den, (nh, nw))
            if pts is not None:
                pts = scale_points(pts, (h, w), (nh, nw))
        if self.patch and not mosaic:
            tries = 1
            if a.dense_crop_prob > 0 and rng.random() < a.dense_crop_prob:
                tries = a.dense_crop_tries
            img, den, (y0, x0) = self._crop(img, den, self.patch, rng, tries)
            if pts is not None:
                pts = pts - np.array([x0, y0], np.float32)
                pts = pts[points_inside(pts, den.shape)]
        if not mosaic and a.overlay_prob > 0 and rng.random() < a.overlay_prob:
            img, den, pts = self._overlay(img, den, pts, rng)
        if a.occlude_prob > 0 and pts is not None and rng.random() < a.occlude_prob:
            img = occlude(img, den, pts, a.occlude_share, rng)
        if a.hflip and rng.random() < 0.5:
            img, den, pts = mirror(img, den, pts, axis=1)
        if a.vflip and rng.random() < 0.5:
            img, den, pts = mirror(img, den, pts, axis=0)
        if a.transpose and den.shape[0] == den.shape[1] and rng.random() < 0.5:
            img, den = img.transpose(1, 0, 2), den.T
            if pts is not None:
                pts = pts[:, ::-1]
        if a.blur_prob > 0 and rng.random() < a.blur_prob:
            sigma = rng.uniform(0.3, a.blur_sigma)
            img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), sigma).reshape(img.shape)
        if a.jpeg_prob > 0 and rng.random() < a.jpeg_prob:
            img = jpeg_round_trip(img, int(rng.integers(a.jpeg_quality, 96)))
        x = img.astype(np.float32) / 255.0
        if a.brightness > 0:
            x = x * rng.uniform(1 - a.brightness, 1 + a.brightness)
        if a.contrast > 0:
            m = x.mean()
            x = (x - m) * rng.uniform(1 - a.contrast, 1 + a.contrast) + m
        if a.gray_prob > 0 and x.shape[2] == 3 and rng.random() < a.gray_prob:
            x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
        x = np.clip(x, 0.0, 1.0)
        x = ((x - self.mean) / self.std).transpose(2, 0, 1)
        y = (den * self.density_scale)[None]
        x, y = np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, np.float32)
        if pts is None or not self.return_points:
            return x, y
        return x, y, np.ascontiguousarray(pts, np.float32).reshape(-1, 2)

    def _mosaic(
        self, img: np.ndarray, den: np.ndarray, pts: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Four random crops of random training images (``img`` first) tiled into one view of
        the patch size (whole images: ``img``'s size), split at a random point in the middle
        half of each side. Returns the view, its density and its points (``None`` without)."""
        h, w = (self.patch, self.patch) if self.patch else den.shape
        cy = int(rng.integers(h // 4, h - h // 4 + 1))
        cx = int(rng.integers(w // 4, w - w // 4 + 1))
        out_img = np.zeros((h, w, img.shape[2]), img.dtype)
        out_den = np.zeros((h, w), np.float32)
        out_pts = []
        sources = [(img, den, pts)]
        for _ in range(3):
            j = int(rng.choice(len(self.images), p=self.weights))
            sources.append((self.images[j], self.densities[j],
                            None if self.points is None else self.points[j].reshape(-1, 2)))
        cells = [(0, 0, cy, cx), (0, cx, cy, w), (cy, 0, h, cx), (cy, cx, h, w)]
        for (src_img, src_den, src_pts), (y0, x0, y1, x1) in zip(sources, cells, strict=True):
            ph, pw = y1 - y0, x1 - x0
            if ph == 0 or pw == 0:
                continue
            sh, sw = src_den.shape
            # a crop of ph x pw (zero padded where the source is smaller)
            sy = int(rng.integers(0, max(0, sh - ph) + 1))
            sx = int(rng.integers(0, max(0, sw - pw) + 1))
            part_img = src_img[sy : sy + ph, sx : sx + pw]
            part_den = src_den[sy : sy + ph, sx : sx + pw]
            out_img[y0 : y0 + part_img.shape[0], x0 : x0 + part_img.shape[1]] = part_img
            out_den[y0 : y0 + part_den.shape[0], x0 : x0 + part_den.shape[1]] = part_den
            if src_pts is not None:
                p = src_pts - np.array([sx, sy], np.float32)
                p = p[points_inside(p, part_den.shape)]
                out_pts.append(p + np.array([x0, y0], np.float32))
        if pts is None:
            return out_img, out_den, None
        return out_img, out_den, np.concatenate(out_pts).astype(np.float32).reshape(-1, 2)

    def _overlay(
        self, img: np.ndarray, den: np.ndarray, pts: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``img`` plus a random, randomly mirrored crop of a random training image of the same
        size less that crop's background; densities and points added. See ``overlay_prob``."""
        h, w = den.shape
        j = int(rng.choice(len(self.images), p=self.weights))
        src_img, src_den = self.images[j], self.densities[j]
        sh, sw = src_den.shape
        sy = int(rng.integers(0, max(0, sh - h) + 1))
        sx = int(rng.integers(0, max(0, sw - w) + 1))
        add = np.zeros((h, w, img.shape[2]), np.float32)
        add_den = np.zeros((h, w), np.float32)
        part = src_img[sy : sy + h, sx : sx + w]
        add[: part.shape[0], : part.shape[1]] = part
        add_den[: part.shape[0], : part.shape[1]] = src_den[sy : sy + h, sx : sx + w]
        add_pts = None
        if pts is not None and self.points is not None:
            add_pts = self.points[j].reshape(-1, 2) - np.array([sx, sy], np.float32)
            add_pts = add_pts[points_inside(add_pts, add_den.shape)]
        flip_x, flip_y = rng.random() < 0.5, rng.random() < 0.5
        if flip_x:
            add, add_den, add_pts = mirror(add, add_den, add_pts, axis=1)
        if flip_y:
            add, add_den, add_pts = mirror(add, add_den, add_pts, axis=0)
        signal = self._light(add)
        base = img.astype(np.float32)
        if self.aug.overlay_light_power != 1.0 and float(den.sum()) > 0:
            ratio = float(den.sum() + add_den.sum()) / float(den.sum())
            base, signal = self._set_light(base, signal, ratio ** self.aug.overlay_light_power)
        out = np.clip(base + signal, 0, 255).astype(img.dtype)
        out_den = (den + add_den).astype(np.float32)
        if pts is None or add_pts is None:
            return out, out_den, pts
        return out, out_den, np.concatenate([pts, add_pts]).astype(np.float32).reshape(-1, 2)

    def _set_light(
        self, base: np.ndarray, signal: np.ndarray, gain: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``base`` and ``signal`` with both views' light scaled by one factor ``k`` so that
        the light of ``base + signal``, measured as :meth:`_light` measures it, is ``gain``
        times that of ``base`` alone. The measured light is close to linear in ``k``: it is
        measured at two factors and ``k`` interpolated."""
        own = self._light(base)
        target = gain * float(own.sum())

        def mix(k: float) -> tuple[np.ndarray, np.ndarray]:
            return (base - (1.0 - k) * own).astype(np.float32), (k * signal).astype(np.float32)

        def measured(k: float) -> float:
            b, s = mix(k)
            return float(self._light(np.clip(b + s, 0, 255)).sum())

        m1, m0 = measured(1.0), measured(0.5)
        k = 1.0 + (target - m1) * 0.5 / max(m1 - m0, 1e-6)
        return mix(float(np.clip(k, 0.05, 1.5)))

    def _light(self, img: np.ndarray) -> np.ndarray:
        """Float ``H x W x C`` light above the background (a grey-level opening of
        ``overlay_background`` pixels, smoothed), zero where below."""
        k = self.aug.overlay_background
        x = np.ascontiguousarray(img, np.float32)
        background = cv2.morphologyEx(x, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        background = cv2.GaussianBlur(background, (0, 0), k / 2).reshape(x.shape)
        return np.clip(x - background, 0.0, None)

    @staticmethod
    def _crop(
        img: np.ndarray, den: np.ndarray, p: int, rng: np.random.Generator, tries: int = 1
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """A ``p`` x ``p`` patch at a random position; with ``tries`` > 1 the densest of that
        many random positions. Returns the patch, its density and its top-left ``(y, x)``."""
        h, w = den.shape
        if h < p or w < p:  # pad small images with zeros (no objects there)
            ph, pw = max(0, p - h), max(0, p - w)
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)))
            den = np.pad(den, ((0, ph), (0, pw)))
            h, w = den.shape
        best, y0, x0 = -1.0, 0, 0
        for _ in range(tries):
            y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            count = float(den[y : y + p, x : x + p].sum()) if tries > 1 else 0.0
            if count > best:
                best, y0, x0 = count, y, x
        return img[y0 : y0 + p, x0 : x0 + p], den[y0 : y0 + p, x0 : x0 + p], (y0, x0)


def collate_points(batch: list[tuple[np.ndarray, ...]]) -> tuple[Any, Any, list[Any]]:
    """Batches ``(x, y, points)`` items: stacked ``x`` and ``y``, the points as a list of
    ``N_i x 2`` tensors (their numbers differ from item to item).

    Example:
        >>> item = (np.zeros((3, 4, 4), np.float32), np.zeros((1, 4, 4), np.float32),
        ...         np.zeros((2, 2), np.float32))
        >>> x, y, pts = collate_points([item, item])
        >>> tuple(x.shape), [tuple(p.shape) for p in pts]
        ((2, 3, 4, 4), [(2, 2), (2, 2)])
    """
    import torch

    xs, ys, ps = zip(*batch, strict=True)
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
            [torch.from_numpy(p) for p in ps])
