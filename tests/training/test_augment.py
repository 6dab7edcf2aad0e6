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


@pytest.mark.parametrize("setting", [{"dense_crop_prob": 1.5}, {"dense_crop_tries": 1},
                                     {"mosaic_prob": -0.1}, {"mosaic_prob": 2.0},
                                     {"overlay_prob": 1.5}, {"overlay_background": 1},
                                     {"overlay_light_power": -0.5}, {"occlude_prob": 1.2},
                                     {"occlude_share": -0.1}])
def test_dense_crop_and_mosaic_settings_out_of_range(setting: dict) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError, match=next(iter(setting))):
        AugmentConfig(**setting)


def _dot_dataset(aug: AugmentConfig, patch: int, seed: int) -> tuple[PatchDataset, list]:
    """Images with single bright pixels at the annotated points (away from each other), their
    densities one unit at those pixels."""
    rng = np.random.default_rng(seed)
    images, densities, points = [], [], []
    for _ in range(3):
        h, w = 60, 72
        grid = np.stack(np.meshgrid(np.arange(6, w - 6, 12), np.arange(6, h - 6, 12)), -1)
        pts = grid.reshape(-1, 2)[rng.permutation(grid.size // 2)[:8]].astype(np.float32)
        img = np.zeros((h, w, 3), np.uint8)
        den = np.zeros((h, w), np.float32)
        for x, y in pts.astype(int):
            img[y - 1 : y + 2, x - 1 : x + 2] = 255
            den[y, x] = 1.0
        images.append(img)
        densities.append(den)
        points.append(pts)
    ds = PatchDataset(images, densities, patch=patch, samples_per_epoch=60, aug=aug,
                      mean=np.zeros(3), std=np.ones(3), density_scale=1.0, points=points)
    ds.set_epoch(seed)
    return ds, points


@pytest.mark.parametrize("patch", [0, 40])
@pytest.mark.parametrize("aug", [
    AugmentConfig(hflip=False),
    AugmentConfig(hflip=True, vflip=True),
    AugmentConfig(hflip=True, vflip=True, transpose=True),
    AugmentConfig(hflip=True, vflip=True, scale_jitter=0.3, scale_prob=1.0),
    AugmentConfig(hflip=True, scale_jitter=0.3, scale_prob=0.5, dense_crop_prob=0.5),
    AugmentConfig(hflip=True, vflip=True, mosaic_prob=0.7),
    AugmentConfig(hflip=True, vflip=True, overlay_prob=0.8),
])
def test_points_move_with_the_pixels(aug: AugmentConfig, patch: int) -> None:
    """Each returned point sits on its bright dot, and the patch holds as many points as the
    density says (dots are 12 px apart and 6 px from the borders)."""
    ds, _ = _dot_dataset(aug, patch, seed=3)
    for k in range(len(ds)):
        x, y, pts = ds[k]
        h, w = x.shape[1:]
        assert pts.shape[1] == 2
        assert ((pts >= -0.5) & (pts < np.array([w, h]) - 0.5)).all()
        ix, iy = np.floor(pts[:, 0] + 0.5).astype(int), np.floor(pts[:, 1] + 0.5).astype(int)
        assert (x[0, iy, ix] > 0.4).all(), "a point is off its dot"
        # a dot cut by the patch's edge may keep part of its density: compare within one
        assert abs(float(y.sum()) - len(pts)) < 1.0 + 1e-3


def test_points_leave_the_random_stream_alone() -> None:
    """Asking for the points changes neither the pixels nor the density of any item."""
    aug = AugmentConfig(hflip=True, vflip=True, scale_jitter=0.3, brightness=0.2)
    ds, _ = _dot_dataset(aug, 40, seed=5)
    plain = PatchDataset(ds.images, ds.densities, patch=40, samples_per_epoch=60, aug=aug,
                         mean=np.zeros(3), std=np.ones(3), density_scale=1.0)
    plain.set_epoch(5)
    for k in range(len(ds)):
        x, y, _ = ds[k]
        x0, y0 = plain[k]
        assert np.array_equal(x, x0) and np.array_equal(y, y0)


@pytest.mark.parametrize("side", [(32, 32), (32, 40)])
def test_transpose_swaps_square_views_only(side: tuple[int, int]) -> None:
    """Square views come out in both orientations with the density on the dot; others never
    change shape (whole images of one size must still batch)."""
    h, w = side
    img = np.zeros((h, w, 3), np.uint8)
    den = np.zeros((h, w), np.float32)
    img[3, 20] = 255  # one dot off the diagonal: (x 20, y 3) or, transposed, (x 3, y 20)
    den[3, 20] = 1.0
    ds = PatchDataset([img], [den], patch=0, samples_per_epoch=40,
                      aug=AugmentConfig(hflip=False, transpose=True), mean=np.zeros(3),
                      std=np.ones(3), density_scale=1.0)
    ds.set_epoch(0)
    where = set()
    for k in range(len(ds)):
        x, y = ds[k]
        assert x.shape[1:] == y.shape[1:] == (h, w)
        (yy,), (xx,) = np.nonzero(y[0])
        assert x[0, yy, xx] == 1.0 and float(y.sum()) == 1.0
        where.add((int(xx), int(yy)))
    assert where == ({(20, 3), (3, 20)} if h == w else {(20, 3)})


@pytest.mark.parametrize(("patch", "prob"), [(0, 1.0), (0, 0.5), (24, 1.0)])
def test_mosaic_tiles_four_images_and_keeps_their_density(patch: int, prob: float) -> None:
    """Image ``i`` is grey level ``40 i`` with density ``i`` per pixel: every pixel of a view
    must carry the density of the image its grey level came from, views keep their size, and
    about ``prob`` of them mix several images."""
    h, w = 32, 40
    images = [np.full((h, w, 3), 40 * i, np.uint8) for i in range(1, 6)]
    densities = [np.full((h, w), float(i), np.float32) for i in range(1, 6)]
    ds = PatchDataset(images, densities, patch=patch, samples_per_epoch=100,
                      aug=AugmentConfig(hflip=True, vflip=True, mosaic_prob=prob),
                      mean=np.zeros(3), std=np.ones(3), density_scale=1.0)
    ds.set_epoch(2)
    mixed = []
    for k in range(len(ds)):
        x, y = ds[k]
        assert x.shape[1:] == y.shape[1:] == ((patch, patch) if patch else (h, w))
        level = np.rint(x[0] * 255 / 40)
        assert np.array_equal(level, y[0]), "a pixel's density is not its own image's"
        mixed.append(len(np.unique(level)) > 1)
    # four draws from five images: a mosaic is one image only with probability 1/125
    assert np.mean(mixed) == pytest.approx(prob, abs=0.15)


@pytest.mark.parametrize("patch", [0, 40])
def test_overlay_adds_the_objects_not_the_background(patch: int) -> None:
    """Images of 3x3 dots on a flat grey background: an overlaid view keeps its own background
    level, gains the other image's dots (as bright as its own: the added background is
    removed), and its density is the sum of both, about ``overlay_prob`` of the time."""
    rng = np.random.default_rng(4)
    h, w, level = 60, 72, 40
    images, densities = [], []
    for _ in range(4):
        img = np.full((h, w, 3), level, np.uint8)
        den = np.zeros((h, w), np.float32)
        for _ in range(6):
            y, x = int(rng.integers(3, h - 3)), int(rng.integers(3, w - 3))
            img[y - 1 : y + 2, x - 1 : x + 2] = 200
            den[y, x] += 1.0
        images.append(img)
        densities.append(den)
    ds = PatchDataset(images, densities, patch=patch, samples_per_epoch=80,
                      aug=AugmentConfig(hflip=False, overlay_prob=0.5), mean=np.zeros(3),
                      std=np.ones(3), density_scale=1.0)
    ds.set_epoch(1)
    overlaid = 0
    for k in range(len(ds)):
        x, y = ds[k]
        pix = np.rint(x[0] * 255)
        assert np.isclose(pix.min(), level), "the background level moved"
        # every pixel is background, one dot (200) or dots of both images on top of each other
        assert set(np.unique(pix)) <= {level, 200, min(255, 200 + 200 - level)}
        own = densities[ds.order[k]]
        if patch == 0:
            overlaid += float(y.sum()) > float(own.sum()) + 0.5
            assert float(y.sum()) <= 2 * 6 + 1e-4
    if patch == 0:
        assert overlaid / len(ds) == pytest.approx(0.5, abs=0.15)


@pytest.mark.parametrize("power", [0.5, 0.65, 1.3])
def test_overlay_light_power_sets_the_light_of_the_sum(power: float) -> None:
    """Blurred blobs on a smooth background: with ``overlay_light_power`` the sum's light,
    as the augmentation measures it, is the own view's times the count ratio to that power,
    while the density still adds up."""
    rng = np.random.default_rng(7)
    h = w = 64
    yy, xx = np.mgrid[:h, :w]
    images, densities = [], []
    for _ in range(3):
        light = np.zeros((h, w), np.float32)
        den = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(6, 12))):
            y, x = int(rng.integers(4, h - 4)), int(rng.integers(4, w - 4))
            light += 120 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)
            den[y, x] += 1.0
        img = np.clip(30 + 0.2 * xx + light, 0, 255).astype(np.uint8)
        images.append(np.repeat(img[..., None], 3, axis=2))
        densities.append(den)
    aug = AugmentConfig(hflip=False, overlay_prob=1.0, overlay_light_power=power)
    ds = PatchDataset(images, densities, patch=0, samples_per_epoch=12, aug=aug,
                      mean=np.zeros(3), std=np.ones(3), density_scale=1.0)
    ds.set_epoch(0)
    for k in range(len(ds)):
        x, y = ds[k]
        own_img, own_den = images[ds.order[k]], densities[ds.order[k]]
        assert float(y.sum()) > float(own_den.sum())
        gain = (float(y.sum()) / float(own_den.sum())) ** power
        out = np.rint(x.transpose(1, 2, 0) * 255)
        measured = float(ds._light(out).sum())
        assert measured == pytest.approx(gain * float(ds._light(own_img).sum()), rel=0.05)


def _people_dataset(aug: AugmentConfig, points: bool = True) -> tuple[PatchDataset, np.ndarray]:
    """A textured 64x96 view with three Gaussian "heads" (sigma 2 px) on its left half."""
    import cv2

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    pts = np.array([[10.0, 12.0], [30.0, 40.0], [20.0, 50.0]], np.float32)
    den = np.zeros((64, 96), np.float32)
    for x, y in pts.astype(int):
        den[y, x] = 1.0
    den = cv2.GaussianBlur(den, (0, 0), 2.0)
    ds = PatchDataset([img], [den], patch=0, samples_per_epoch=40, aug=aug, mean=np.zeros(3),
                      std=np.ones(3), density_scale=1.0, points=[pts] if points else None,
                      return_points=False)
    ds.set_epoch(0)
    return ds, pts


@pytest.mark.parametrize(("prob", "share"), [(1.0, 1.0), (1.0, 0.3), (0.5, 1.0)])
def test_occluders_cover_heads_and_keep_the_density(prob: float, share: float) -> None:
    plain, pts = _people_dataset(AugmentConfig(hflip=False))
    ds, _ = _people_dataset(AugmentConfig(hflip=False, occlude_prob=prob, occlude_share=share))
    views_changed = 0
    for k in range(len(ds)):
        x, y = ds[k]  # items stay (x, y): the points serve the augmentation only
        x0, y0 = plain[k]
        np.testing.assert_array_equal(y, y0)  # the covered people are still counted
        changed = np.argwhere((x != x0).any(axis=0))
        if len(changed) == 0:
            continue
        views_changed += 1
        # every changed pixel lies within an occluder's reach of a head: side <= 2 heads of
        # 4 sigma (16 px), centred within 0.4 of the side of the point
        reach = np.min(np.abs(changed[:, None, ::-1] - pts[None]).max(axis=2), axis=1)
        assert reach.max() <= 0.5 * 16 + 0.4 * 16 + 1
    # a view gets occluders with probability prob, and then each of 3 heads with share
    expected = prob * (1 - (1 - share) ** 3) * len(ds)
    assert views_changed == pytest.approx(expected, abs=0.25 * len(ds))
    assert views_changed > 0


def test_occluders_off_keep_the_stream_and_need_points() -> None:
    from streamcount.errors import InputError

    a, _ = _people_dataset(AugmentConfig(brightness=0.2))
    b, _ = _people_dataset(AugmentConfig(brightness=0.2, occlude_share=0.9))
    assert all(np.array_equal(a[k][0], b[k][0]) for k in range(10))
    with pytest.raises(InputError, match="point annotations"):
        _people_dataset(AugmentConfig(occlude_prob=0.5), points=False)


def test_occluders_are_taken_from_empty_places_only() -> None:
    """A view crowded everywhere has no place holding under 0.02 objects: nothing is pasted."""
    from streamcount.training.data import occlude

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    den = np.full((32, 32), 0.01, np.float32)  # 0.01 a pixel: any 2x2 place holds 0.04
    out = occlude(img, den, np.array([[8.0, 8.0], [20.0, 20.0]], np.float32), 1.0, rng)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize(("weights", "n"), [
    ([0.5, 0.25, 0.25], 8),
    ([0.1, 0.2, 0.3, 0.4], 7),
    ([1 / 3, 1 / 3, 1 / 3], 10),
    ([0.97, 0.01, 0.01, 0.01], 50),
])
def test_spread_order_gives_each_image_its_quota(weights: list[float], n: int) -> None:
    from streamcount.training.data import spread_order

    quota = np.asarray(weights) * n
    totals = np.zeros(len(weights))
    for seed in range(400):
        got = np.bincount(spread_order(np.asarray(weights), n, np.random.default_rng(seed)),
                          minlength=len(weights))
        assert got.sum() == n
        # each image within one of its quota, never the rounding of an independent draw
        assert np.all(got >= np.floor(quota)) and np.all(got <= np.ceil(quota))
        totals += got
    np.testing.assert_allclose(totals / 400, quota, atol=0.08)  # unbiased over epochs


def test_spread_epochs_show_dense_images_more_in_a_shuffled_order() -> None:
    images = [np.full((16, 16, 3), i, np.uint8) for i in range(4)]
    densities = [np.zeros((16, 16), np.float32) for _ in range(4)]
    w = np.array([1.0, 1.0, 2.0, 4.0])
    ds = PatchDataset(images, densities, patch=0, samples_per_epoch=80, aug=AugmentConfig(
        hflip=False, vflip=False), mean=np.zeros(3), std=np.ones(3), density_scale=1.0,
        weights=w, spread=True)  # fmt: skip
    orders = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        assert np.bincount(ds.order, minlength=4).tolist() == [10, 10, 20, 40]
        orders.append(ds.order.copy())
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    ds.set_epoch(1)
    np.testing.assert_array_equal(ds.order, orders[1])  # and reproducible
    assert round(float(ds[0][0][0, 0, 0]) * 255) == ds.order[0]  # item k: image order[k]
