"""Shared fixtures: paths, the optional ../shared/data, tiny synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip the test when this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only the team's machines have it)")
    return SHARED_DATA


def blob_image(rng: np.random.Generator, h: int, w: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 'cells' image: ``n`` bright Gaussian blobs on a dark noisy background.

    Returns:
        (RGB uint8 image, N x 2 float32 points).
    """
    pts = np.stack([rng.uniform(3, w - 3, n), rng.uniform(3, h - 3, n)], 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.normal(20, 4, (h, w))
    for x, y in pts:
        img += 180 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2), pts


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared dataset (train.h5, val.h5) of synthetic blob images, as `prepare` writes it."""
    from training.datasets.base import Sample
    from training.density import DensityConfig, density_map
    from training.store import SplitWriter

    out = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(0)
    cfg = DensityConfig(kernel="fixed", sigma=2.0)
    for split, n_img in (("train", 24), ("val", 8)):
        attrs = {"source": "synthetic", "split": split, "scale": 1.0, "kernel": "fixed"}
        with SplitWriter(out / f"{split}.h5", attrs) as w:
            for i in range(n_img):
                img, pts = blob_image(rng, 64, 64, int(rng.integers(5, 40)))
                s = Sample(name=f"{split}{i}", image=img, points=pts)
                w.add(s, density_map(pts, (64, 64), cfg))
    return out
