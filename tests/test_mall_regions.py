"""benchmarks/mall_regions.py: a model's Mall counts split by region of the picture."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "mall_regions.py"
SHARED = REPO.parent / "shared" / "data"


def _module():
    spec = importlib.util.spec_from_file_location("mall_regions", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regions_split_the_frame_without_loss(seed: int) -> None:
    """The regions and the rest add up to the frame: predicted mass and annotated points."""
    mod = _module()
    rng = np.random.default_rng(seed)
    density = rng.random((480, 640)).astype(np.float32) * 1e-4
    points = rng.uniform([0, 0], [640, 480], (50, 2))
    got = mod.region_counts(density, points)
    assert set(got) == {*mod.REGIONS, "rest"}
    assert sum(p for p, _ in got.values()) == pytest.approx(float(density.sum()), rel=1e-5)
    assert sum(t for _, t in got.values()) == len(points)
    # ``rest`` is the frame less the regions: measured here on its own mask, which holds only
    # if the regions do not overlap and lie inside the frame
    mask = np.ones(density.shape, bool)
    in_any = np.zeros(len(points), bool)
    for x0, y0, x1, y1 in mod.REGIONS.values():
        assert not (~mask[y0:y1, x0:x1]).any(), "regions overlap"
        mask[y0:y1, x0:x1] = False
        in_any |= ((points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0)
                   & (points[:, 1] < y1))
    assert got["rest"][0] == pytest.approx(float(density[mask].sum()), rel=1e-4)
    assert got["rest"][1] == int((~in_any).sum())
    x0, y0, x1, y1 = mod.REGIONS["palm"]
    inside = ((points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0)
              & (points[:, 1] < y1)).sum()
    assert got["palm"][1] == inside


@pytest.mark.parametrize(("model", "gt_key", "message"), [
    ("crowd", None, "mall_gt.mat not found"),
    ("crowd", "count", "no 'frame' array"),
    ("no-such-model", "frame", "unknown model"),
])
def test_bad_input_is_one_line(tmp_path: Path, model: str, gt_key: str | None,
                               message: str) -> None:
    if gt_key is not None:
        from scipy.io import savemat

        savemat(str(tmp_path / "mall_gt.mat"), {gt_key: np.zeros((1, 1))})
    res = subprocess.run([sys.executable, str(SCRIPT), model, "--root", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "mall" / "mall_gt.mat").is_file(),
                    reason="../shared/data/mall is absent")
def test_real_mall_blocks_add_up(tmp_path: Path) -> None:
    """On the real frames every block's regions add up to its mean annotated count."""
    import json

    from scipy.io import loadmat

    res = subprocess.run([sys.executable, str(SCRIPT), "crowd", "--root", str(SHARED / "mall"),
                          "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    blocks = json.loads(res.stdout)["blocks"]
    counts = loadmat(str(SHARED / "mall" / "mall_gt.mat"))["count"].ravel()
    for b, (first, last, step) in zip(blocks, _module().BLOCKS, strict=True):
        true = sum(b[k]["true"] for k in ("palm", "far-left", "rest"))
        assert true == pytest.approx(counts[first - 1 : last : step].mean(), abs=0.01)
