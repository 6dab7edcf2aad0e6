"""Density maps from point annotations.

Three kernels, all built from small per-point Gaussian patches (never a full-image filter per
point):

* ``fixed``: one sigma for every point.
* ``adaptive``: geometry-adaptive sigma, ``beta`` times the mean distance to the ``k`` nearest
  neighbours (Zhang et al., MCNN, CVPR 2016).
* ``perspective``: sigma proportional to the perspective (scale) map at the point, so people
  near the camera get wider kernels.

Every patch is cut at the image border and renormalised, so each point inside the image
contributes exactly 1 and every map integrates to the number of points inside the image (up to
float32 rounding).

Coordinates follow the pixel-centre convention: pixel ``i`` covers ``[i - 0.5, i + 0.5)``, so a
point lies inside a ``W`` wide image when ``-0.5 <= x < W - 0.5``.

Example:
    >>> import numpy as np
    >>> d = density_map(np.array([[0.0, 0.0], [10.0, 5.0]]), (16, 16), DensityConfig(sigma=2))
    >>> round(float(d.sum()), 4)
    2.0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from streamcount.training.datasets.base import Sample

logger = logging.getLogger(__name__)

KERNELS = ("fixed", "adaptive", "perspective")

# Points per vectorised chunk are chosen so one chunk holds at most this many patch pixels.
_CHUNK_PIXELS = 4_000_000


@dataclass
class DensityConfig:
    """How density maps are built.

    Attributes:
        kernel: ``"fixed"``, ``"adaptive"`` or ``"perspective"``.
        sigma: Fixed sigma in output pixels; for ``perspective`` the sigma where the perspective
            map equals its median; for ``adaptive`` the fallback when an image has fewer than
            ``k + 1`` points.
        k: Neighbours for the adaptive kernel.
        beta: Factor on the mean neighbour distance for the adaptive kernel.
        sigma_min: Lower clip for adaptive/perspective sigmas.
        sigma_max: Upper clip for adaptive/perspective sigmas.
        truncate: Patch half-size in sigmas.
    """

    kernel: str = "fixed"
    sigma: float = 4.0
    k: int = 3
    beta: float = 0.3
    sigma_min: float = 0.5
    sigma_max: float = 50.0
    truncate: float = 3.0

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; choose one of {KERNELS}")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")

    def describe(self) -> dict[str, float | str]:
        """The parameters that matter for this kernel, for HDF5 attributes and logs."""
        out: dict[str, float | str] = {"kernel": self.kernel, "sigma": float(self.sigma)}
        if self.kernel == "adaptive":
            out.update(k=int(self.k), beta=float(self.beta))
        if self.kernel != "fixed":
            out.update(sigma_min=float(self.sigma_min), sigma_max=float(self.sigma_max))
        return out


def points_inside(points: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the points whose nearest pixel lies inside an ``H x W`` image.

    Args:
        points: ``N x 2`` (x, y) 0-based pixel coordinates.
        hw: Image height and width.

    Returns:
        ``N`` booleans.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = hw
    ix = np.floor(pts[:, 0] + 0.5)
    iy = np.floor(pts[:, 1] + 0.5)
    finite = np.isfinite(pts).all(axis=1)
    return finite & (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)


def adaptive_sigmas(points: np.ndarray, config: DensityConfig) -> np.ndarray:
    """Geometry-adaptive sigmas: ``beta`` times the mean distance to the ``k`` nearest points.

    Args:
        points: ``N x 2`` point coordinates.
        config: Uses ``k``, ``beta``, ``sigma`` (fallback), ``sigma_min`` and ``sigma_max``.

    Returns:
        ``N`` sigmas in pixels.
    """
    from scipy.spatial import cKDTree

    n = len(points)
    if n < 2:
        return np.full(n, config.sigma, dtype=np.float64)
    k = min(config.k, n - 1)
    dist, _ = cKDTree(points).query(points, k=k + 1)
    mean = np.asarray(dist, dtype=np.float64).reshape(n, -1)[:, 1:].mean(axis=1)
    sig = config.beta * mean
    return np.clip(sig, config.sigma_min, config.sigma_max)


def perspective_sigmas(
    points: np.ndarray, perspective: np.ndarray, config: DensityConfig
) -> np.ndarray:
    """Sigmas proportional to the perspective (scale) map at each point.

    ``sigma_i = sigma * p(point_i) / median(p)``, clipped to ``[sigma_min, sigma_max]``.

    Args:
        points: ``N x 2`` points inside the image.
        perspective: ``H x W`` scale map (larger = nearer the camera = bigger objects).
        config: Uses ``sigma``, ``sigma_min`` and ``sigma_max``.

    Returns:
        ``N`` sigmas in pixels.
    """
    p = np.asarray(perspective, dtype=np.float64)
    valid = p[np.isfinite(p) & (p > 0)]
    if valid.size == 0:
        raise ValueError("perspective map has no positive values")
    ref = float(np.median(valid))
    h, w = p.shape
    ix = np.clip(np.floor(points[:, 0] + 0.5).astype(np.int64), 0, w - 1)
    iy = np.clip(np.floor(points[:, 1] + 0.5).astype(np.int64), 0, h - 1)
    at = p[iy, ix]
    at = np.where(np.isfinite(at) & (at > 0), at, ref)
    return np.clip(config.sigma * at / ref, config.sigma_min, config.sigma_max)


def gaussian_density(points: np.ndarray, sigmas: np.ndarray | float, hw: tuple[int, int],
                     truncate: float = 3.0) -> np.ndarray:
    """Sum of per-point Gaussians, each renormalised to mass 1 inside the image.

    Points whose nearest pixel is outside the image are ignored.

    Args:
        points: ``N x 2`` (x, y) 0-based coordinates.
        sigmas: One sigma for all points or ``N`` sigmas (pixels).
        hw: Output height and width.
        truncate: Patch half-size in sigmas.

    Returns:
        ``H x W`` float32 map whose sum equals the number of points inside.
    """
    h, w = int(hw[0]), int(hw[1])
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sig = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), (len(pts),)).copy()
    keep = points_inside(pts, (h, w))
    pts, sig = pts[keep], sig[keep]
    flat = np.zeros(h * w, dtype=np.float64)
    if len(pts) == 0:
        return flat.reshape(h, w).astype(np.float32)
    radius = np.maximum(np.ceil(truncate * sig), 1).astype(np.int64)
    for r in np.unique(radius):
        sel = np.flatnonzero(radius == r)
        offs = np.arange(-r, r + 1)
        per_point = (2 * r + 1) ** 2
        chunk = max(1, _CHUNK_PIXELS // per_point)
        for start in range(0, len(sel), chunk):
            idx = sel[start:start + chunk]
            x, y, s = pts[idx, 0], pts[idx, 1], sig[idx]
            cx = np.floor(x + 0.5).astype(np.int64)[:, None] + offs[None, :]  # n x P
            cy = np.floor(y + 0.5).astype(np.int64)[:, None] + offs[None, :]
            inv = 1.0 / (2.0 * s * s)
            gx = np.exp(-((cx - x[:, None]) ** 2) * inv[:, None])
            gy = np.exp(-((cy - y[:, None]) ** 2) * inv[:, None])
            gx *= (cx >= 0) & (cx < w)
            gy *= (cy >= 0) & (cy < h)
            # The Gaussian is separable: the in-image mass is the product of the 1-D sums.
            gx /= gx.sum(axis=1, keepdims=True)
            gy /= gy.sum(axis=1, keepdims=True)
            patch = gy[:, :, None] * gx[:, None, :]  # n x P x P, each sums to 1
            lin = np.clip(cy, 0, h - 1)[:, :, None] * w + np.clip(cx, 0, w - 1)[:, None, :]
            mask = patch > 0
            flat += np.bincount(lin[mask], weights=patch[mask], minlength=h * w)
    return flat.reshape(h, w).astype(np.float32)


def density_map(
    points: np.ndarray,
    hw: tuple[int, int],
    config: DensityConfig,
    perspective: np.ndarray | None = None,
) -> np.ndarray:
    """Build a density map with the configured kernel.

    Args:
        points: ``N x 2`` (x, y) 0-based coordinates.
        hw: Output height and width.
        config: Kernel and parameters.
        perspective: ``H x W`` scale map; required by the ``perspective`` kernel.

    Returns:
        ``H x W`` float32 map integrating to the number of points inside the image.

    Raises:
        ValueError: ``perspective`` kernel without a perspective map of the right size.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[points_inside(pts, hw)]
    if config.kernel == "fixed":
        sig: np.ndarray | float = config.sigma
    elif config.kernel == "adaptive":
        sig = adaptive_sigmas(pts, config)
    else:
        if perspective is None:
            raise ValueError("the perspective kernel needs a perspective map")
        if tuple(perspective.shape[:2]) != tuple(hw):
            raise ValueError(
                f"perspective map is {perspective.shape[:2]}, the image is {tuple(hw)}"
            )
        sig = perspective_sigmas(pts, perspective, config)
    return gaussian_density(pts, sig, hw, truncate=config.truncate)


def resize_density(density: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """Resize a density map to ``new_hw`` keeping its integral.

    Args:
        density: ``H x W`` map.
        new_hw: Target height and width.

    Returns:
        ``new_h x new_w`` float32 map with the same sum as ``density``.
    """
    import cv2

    d = np.asarray(density, dtype=np.float32)
    h, w = d.shape[:2]
    nh, nw = int(new_hw[0]), int(new_hw[1])
    if (nh, nw) == (h, w):
        return d.copy()
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_LINEAR
    out = cv2.resize(d, (nw, nh), interpolation=interp).astype(np.float64)
    total = float(d.astype(np.float64).sum())
    got = float(out.sum())
    if got > 0:
        out *= total / got
    elif total > 0:  # everything vanished (extreme downscale): put the mass back uniformly
        out[:] = total / out.size
    return out.astype(np.float32)


def scaled_size(hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """Image size after scaling by ``scale`` (at least 1 x 1)."""
    return max(1, round(hw[0] * scale)), max(1, round(hw[1] * scale))


def scale_points(points: np.ndarray, old_hw: tuple[int, int],
                 new_hw: tuple[int, int]) -> np.ndarray:
    """Map pixel-centre coordinates from one image size to another.

    A point inside the old image stays inside the new one, so counts are unchanged.

    Args:
        points: ``N x 2`` (x, y) in the old image.
        old_hw: Old height and width.
        new_hw: New height and width.

    Returns:
        ``N x 2`` float32 points in the new image.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sx = new_hw[1] / old_hw[1]
    sy = new_hw[0] / old_hw[0]
    out = np.empty_like(pts)
    out[:, 0] = (pts[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (pts[:, 1] + 0.5) * sy - 0.5
    # Guard against float rounding pushing a border point out.
    out[:, 0] = np.clip(out[:, 0], -0.5, new_hw[1] - 0.5 - 1e-6)
    out[:, 1] = np.clip(out[:, 1], -0.5, new_hw[0] - 0.5 - 1e-6)
    return out.astype(np.float32)


def rescale_sample(sample: Sample, scale: float) -> Sample:
    """Resize a sample's image, ROI and perspective map by ``scale``, moving its points.

    The count is exact: every point inside the old image is inside the new one. Density maps
    are then built at the new size with :func:`density_map` (not resized).

    Args:
        sample: The sample (not modified).
        scale: Factor, e.g. 0.5 for half resolution.

    Returns:
        A new sample; the perspective map is multiplied by the scale (pixels per metre shrink).
    """
    import cv2

    if scale == 1.0:
        return sample
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    old_hw = sample.image.shape[:2]
    new_hw = scaled_size(old_hw, scale)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sample.image, (new_hw[1], new_hw[0]), interpolation=interp)
    if image.ndim == 2:
        image = image[:, :, None]
    keep = points_inside(sample.points, old_hw)
    points = scale_points(sample.points[keep], old_hw, new_hw)
    roi = None
    if sample.roi is not None:
        roi = cv2.resize(sample.roi, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_NEAREST)
    persp = None
    if sample.perspective is not None:
        persp = cv2.resize(sample.perspective.astype(np.float32), (new_hw[1], new_hw[0]),
                           interpolation=cv2.INTER_LINEAR) * np.float32(scale)
    meta = dict(sample.meta, scale=scale, original_hw=list(old_hw))
    return replace(sample, image=image, points=points, roi=roi, perspective=persp, meta=meta)
