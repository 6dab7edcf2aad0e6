"""Count-preserving augmentations of the training patches."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from streamcount.training.data import AugmentConfig, PatchDataset


def _dataset(aug: AugmentConfig, n: int = 200) -> PatchDataset:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(4)]
    densities = [np.full((40, 48), 5.0 / (40 * 48), np.float32) for _ in range(4)]
    ds = PatchDataset(images, densities, patch=0, samples_per_epoch=n, aug=aug,
                      mean=np.zeros(3), std=np.ones(3), density_scale=1.0)
    ds.set_epoch(1)
    return ds


@pytest.mark.parametrize("prob", [0.0, 0.3, 0.7, 1.0])
def test_scale_prob_leaves_that_share_at_the_prepared_scale(prob: float) -> None:
    ds = _dataset(AugmentConfig(hflip=False, scale_jitter=0.3, scale_prob=prob))
    items = [ds[k] for k in range(len(ds))]
    unresized = np.mean([x.shape[1:] == (40, 48) for x, _ in items])
    # a factor within about 1% of 1 also rounds back to 40x48 (a few percent of the resized
    # ones); 200 draws: a binomial spread of at most 0.035
    assert unresized == pytest.approx(1 - prob + 0.04 * prob, abs=0.09)
    for _, y in items:  # every view keeps the count
        assert float(y.sum()) == pytest.approx(5.0, rel=1e-4)


def test_scale_prob_one_draws_as_before() -> None:
    """The default keeps the random stream of runs made before the option existed."""
    a = _dataset(AugmentConfig(scale_jitter=0.3, brightness=0.2), n=20)
    b = _dataset(AugmentConfig(scale_jitter=0.3, brightness=0.2, scale_prob=1.0), n=20)
    c = _dataset(AugmentConfig(scale_jitter=0.3, brightness=0.2, scale_prob=0.999), n=20)
    same = [np.array_equal(a[k][0], b[k][0]) for k in range(20)]
    assert all(same)
    assert not all(np.array_equal(a[k][0], c[k][0]) for k in range(20))


def _sharpness(x: np.ndarray) -> float:
    """Mean absolute difference of horizontal neighbours (a blur lowers it)."""
    return float(np.abs(np.diff(x, axis=2)).mean())


@pytest.mark.parametrize(("setting", "prob"), [("blur_prob", 0.5), ("blur_prob", 1.0),
                                               ("jpeg_prob", 0.5), ("jpeg_prob", 1.0)])
def test_blur_and_jpeg_change_that_share_and_keep_the_count(setting: str, prob: float) -> None:
    plain = _dataset(AugmentConfig(hflip=False), n=100)
    ds = _dataset(AugmentConfig(hflip=False, **{setting: prob, "jpeg_quality": 20}), n=100)
    changed = []
    for k in range(len(ds)):
        x, y = ds[k]
        x0, _ = plain[k]
        assert float(y.sum()) == pytest.approx(5.0, rel=1e-4)  # pixels only: counts stay
        assert x.shape == x0.shape
        changed.append(not np.array_equal(x, x0))
        if changed[-1]:
            # random noise images: both a blur and a strong JPEG smooth them
            assert _sharpness(x) < _sharpness(x0)
    assert np.mean(changed) == pytest.approx(prob, abs=0.15)


def test_blur_and_jpeg_keep_the_stream_when_off() -> None:
    """Off (the default), the options draw nothing: older recipes' random streams are kept."""
    a = _dataset(AugmentConfig(scale_jitter=0.3, brightness=0.2), n=20)
    b = _dataset(AugmentConfig(scale_jitter=0.3, brightness=0.2, blur_sigma=3.0,
                               jpeg_quality=50), n=20)
    assert all(np.array_equal(a[k][0], b[k][0]) for k in range(20))


def test_jpeg_on_a_grey_patch() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 1), dtype=np.uint8)]
    ds = PatchDataset(images, [np.zeros((32, 32), np.float32)], patch=16, samples_per_epoch=4,
                      aug=AugmentConfig(jpeg_prob=1.0, blur_prob=1.0), mean=np.zeros(1),
                      std=np.ones(1), density_scale=1.0)
    ds.set_epoch(0)
    assert ds[0][0].shape == (1, 16, 16)


def _dense_corner_dataset(aug: AugmentConfig) -> PatchDataset:
    """One 64x64 image whose objects all sit in its top-left 16x16 corner."""
    den = np.zeros((64, 64), np.float32)
    den[:16, :16] = 10.0 / 256
    img = np.zeros((64, 64, 3), np.uint8)
    ds = PatchDataset([img], [den], patch=24, samples_per_epoch=200, aug=aug,
                      mean=np.zeros(3), std=np.ones(3), density_scale=1.0)
    ds.set_epoch(3)
    return ds


@pytest.mark.parametrize("prob", [0.5, 1.0])
def test_dense_crops_show_more_of_the_dense_group(prob: float) -> None:
    uniform = _dense_corner_dataset(AugmentConfig(hflip=False))
    dense = _dense_corner_dataset(AugmentConfig(hflip=False, dense_crop_prob=prob,
                                                dense_crop_tries=8))
    mean_uniform = np.mean([float(uniform[k][1].sum()) for k in range(200)])
    mean_dense = np.mean([float(dense[k][1].sum()) for k in range(200)])
    # a uniform 24 px crop of 64 px overlaps the 16 px corner in about 1/6 of draws
    assert mean_dense > 2.0 * mean_uniform
    for k in range(20):  # still a crop of the image: its count is the density under it
        x, y = dense[k]
        assert x.shape == (3, 24, 24) and y.shape == (1, 24, 24)


def test_dense_crops_off_keep_the_stream() -> None:
    a = _dense_corner_dataset(AugmentConfig(brightness=0.2))
    b = _dense_corner_dataset(AugmentConfig(brightness=0.2, dense_crop_tries=9))
    assert all(np.array_equal(a[k][1], b[k][1]) for k in range(50))


@pytest.mark.parametrize("setting", [{"dense_crop_prob": 1.5}, {"dense_crop_tries": 1}])
def test_dense_crop_settings_out_of_range(setting: dict) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError, match=next(iter(setting))):
        AugmentConfig(**setting)
