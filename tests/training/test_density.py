"""Density maps integrate to the point count for every kernel, at borders and after --scale."""

from __future__ import annotations

import numpy as np
import pytest

from streamcount.training.datasets.base import Sample
from streamcount.training.density import (
    DensityConfig,
    density_map,
    gaussian_density,
    points_inside,
    rescale_sample,
    resize_density,
)

HW = (60, 80)


def _points(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-0.5, -0.5], [HW[1] - 0.5, HW[0] - 0.5], size=(n, 2))
    border = np.array([[0, 0], [HW[1] - 1, HW[0] - 1], [-0.4, 30], [79.4, 2], [40, 59.4],
                       [0.2, 59.0]])
    return np.concatenate([pts, border]).astype(np.float32)


def _needs_scipy(kernel: str) -> None:
    """The adaptive kernel finds nearest neighbours with scipy (the train extra)."""
    if kernel == "adaptive":
        pytest.importorskip("scipy", reason="the adaptive kernel needs the train extra (scipy)")


def _perspective() -> np.ndarray:
    return np.tile(np.linspace(0.3, 1.5, HW[0], dtype=np.float32)[:, None], (1, HW[1]))


@pytest.mark.parametrize("kernel", ["fixed", "adaptive", "perspective"])
@pytest.mark.parametrize("sigma", [0.7, 3.0, 15.0])
def test_density_integrates_to_count(kernel: str, sigma: float) -> None:
    _needs_scipy(kernel)
    pts = _points()
    cfg = DensityConfig(kernel=kernel, sigma=sigma)
    d = density_map(pts, HW, cfg, _perspective())
    assert d.shape == HW and d.dtype == np.float32
    assert d.min() >= 0
    assert float(d.astype(np.float64).sum()) == pytest.approx(len(pts), rel=1e-5)


def test_points_outside_are_not_counted() -> None:
    pts = np.array([[10, 10], [-0.6, 5], [80, 5], [5, 60], [np.nan, 3]], np.float32)
    assert points_inside(pts, HW).tolist() == [True, False, False, False, False]
    d = density_map(pts, HW, DensityConfig(sigma=2))
    assert float(d.sum()) == pytest.approx(1.0, rel=1e-6)


def test_corner_point_mass_stays_inside_and_peaks_at_point() -> None:
    d = gaussian_density(np.array([[0.0, 0.0]]), 5.0, HW)
    assert float(d.sum()) == pytest.approx(1.0, rel=1e-6)
    assert np.unravel_index(d.argmax(), d.shape) == (0, 0)


def test_empty_and_single_point() -> None:
    _needs_scipy("adaptive")
    assert density_map(np.zeros((0, 2)), HW, DensityConfig(kernel="adaptive")).sum() == 0
    d = density_map(np.array([[5.0, 5.0]]), HW, DensityConfig(kernel="adaptive", sigma=3))
    assert float(d.sum()) == pytest.approx(1.0, rel=1e-6)


def test_perspective_sigma_grows_with_scale_map() -> None:
    persp = _perspective()  # small at the top, large at the bottom
    cfg = DensityConfig(kernel="perspective", sigma=3)
    top = density_map(np.array([[40.0, 5.0]]), HW, cfg, persp)
    bottom = density_map(np.array([[40.0, 55.0]]), HW, cfg, persp)
    assert top.max() > bottom.max()  # narrower kernel far away


def test_perspective_kernel_needs_map() -> None:
    with pytest.raises(ValueError, match="perspective"):
        density_map(np.array([[1.0, 1.0]]), HW, DensityConfig(kernel="perspective"))


def test_many_points_keep_their_mass() -> None:
    pts = np.random.default_rng(1).uniform(0, 479, size=(800, 2))
    d = density_map(pts, (480, 640), DensityConfig(kernel="fixed", sigma=4))
    assert float(d.astype(np.float64).sum()) == pytest.approx(800, rel=1e-5)
    # and the mass sits where the points are: the centroid of the map is theirs
    ys, xs = np.mgrid[0:480, 0:640]
    centre = [float((d * xs).sum() / d.sum()), float((d * ys).sum() / d.sum())]
    assert centre == pytest.approx(pts.mean(axis=0).tolist(), abs=0.5)


@pytest.mark.parametrize("new_hw", [(30, 40), (120, 160), (17, 99)])
def test_resize_density_keeps_integral(new_hw: tuple[int, int]) -> None:
    d = density_map(_points(), HW, DensityConfig(sigma=2))
    r = resize_density(d, new_hw)
    assert r.shape == new_hw
    assert float(r.sum()) == pytest.approx(float(d.sum()), rel=1e-5)  # rescaled to it
    # the mass moves with the picture: each axis's centroid scales with the size (pixel centres
    # at integers, so the map's centroid c maps to (c + 0.5) * new / old - 0.5)
    for axis, (old_n, new_n) in enumerate(zip(d.shape, new_hw, strict=True)):
        c_old = float((d.sum(axis=1 - axis) * np.arange(old_n)).sum() / d.sum())
        c_new = float((r.sum(axis=1 - axis) * np.arange(new_n)).sum() / r.sum())
        assert c_new == pytest.approx((c_old + 0.5) * new_n / old_n - 0.5, abs=0.6)


@pytest.mark.parametrize("scale", [0.5, 0.37, 1.0, 2.0])
@pytest.mark.parametrize("kernel", ["fixed", "adaptive", "perspective"])
def test_rescale_keeps_count_exact(scale: float, kernel: str) -> None:
    _needs_scipy(kernel)
    pts = _points()
    sample = Sample("s", np.zeros((*HW, 3), np.uint8), pts, roi=np.ones(HW, np.uint8),
                    perspective=_perspective())
    out = rescale_sample(sample, scale)
    assert out.count == len(pts)
    hw = out.image.shape[:2]
    assert hw == (round(HW[0] * scale), round(HW[1] * scale))
    assert out.roi.shape == hw and out.perspective.shape == hw
    assert points_inside(out.points, hw).all()
    d = density_map(out.points, hw, DensityConfig(kernel=kernel, sigma=2 * scale),
                    out.perspective)
    assert float(d.astype(np.float64).sum()) == pytest.approx(len(pts), rel=1e-5)
