"""benchmarks/cells_overlap.py: how overlapping cells look, and the count floor they set."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "cells_overlap.py"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("cells_overlap", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("points", "distance", "blobs"), [
    ([], 2.0, 0),
    ([[5, 5]], 2.0, 1),
    ([[0, 0], [1, 0], [2, 0], [3, 0]], 1.5, 1),  # a chain merges by single linkage
    ([[0, 0], [1, 0], [2, 0], [3, 0]], 1.0, 4),  # "closer than": 1 px apart is not under 1
    ([[0, 0], [1, 1], [10, 10], [30, 0], [30, 2.5]], 2.0, 4),
    ([[0, 0], [1, 1], [10, 10], [30, 0], [30, 2.5]], 3.0, 3),
])
def test_merged_blobs(points: list[list[float]], distance: float, blobs: int) -> None:
    mod = _module()
    assert mod.merged_blobs(np.array(points, np.float64).reshape(-1, 2), distance) == blobs


def test_blob_floor_is_zero_without_merges_and_counts_hidden_cells() -> None:
    mod = _module()
    rng = np.random.default_rng(0)
    apart = [np.stack([np.arange(n) * 10.0, np.zeros(n)], 1) for n in (5, 8, 12)]
    got = mod.blob_floor(apart, apart, 3.0)
    assert got == {"cells_per_blob": 1.0, "mae_ratio": 0.0, "mae_quadratic": 0.0}
    # two images of 10 blobs, one with 2 hidden pairs, one with none: the ratio fitted on both
    # is 22/20, so each is off by one cell
    base = np.stack([np.arange(10) * 10.0, np.zeros(10)], 1)
    paired = np.vstack([base, base[:2] + np.array([1.0, 0.0])])
    got = mod.blob_floor([base, paired], [base, paired], 2.0)
    assert got["cells_per_blob"] == pytest.approx(1.1)
    assert got["mae_ratio"] == pytest.approx(1.0)
    # random images: the floor grows with the merge distance
    imgs = [rng.uniform(0, 60, (int(rng.integers(40, 120)), 2)) for _ in range(12)]
    maes = [mod.blob_floor(imgs, imgs, t)["mae_ratio"] for t in (0.5, 3.0, 6.0)]
    assert maes[0] < maes[2] and maes[1] <= maes[2]


@pytest.mark.parametrize("separation", [1.0, 2.0, 4.0])
def test_pair_look_sees_additive_light(separation: float) -> None:
    """On images whose cells add their light, a pair holds about twice a lone cell's light."""
    mod = _module()
    yy, xx = np.mgrid[0:80, 0:80]
    lone = [(15.0, 15.0), (60.0, 15.0), (15.0, 60.0)]
    pair = [(50.0, 55.0), (50.0 + separation, 55.0)]
    img = np.zeros((80, 80))
    for x, y in lone + pair:
        img += 100 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    rgb = np.stack([np.zeros_like(img), np.zeros_like(img), img], 2).astype(np.uint8)
    rows = {r["group"]: r for r in mod.pair_look([rgb], [np.array(lone + pair)], radius=6)}
    assert rows["lone"]["n"] == 3
    band = next(g for g, (lo, hi) in zip(list(rows)[1:], mod.PAIR_BANDS, strict=True)
                if lo <= separation < hi)
    assert rows[band]["n"] == 2
    assert rows[band]["light_vs_lone"] == pytest.approx(2.0, rel=0.08)
    assert sum(r["n"] for r in rows.values()) == 5


def test_cli_reads_a_prepared_folder(blob_dataset: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), str(blob_dataset), "--distances", "2,4",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [r["distance"] for r in got["floor"]] == [2.0, 4.0]
    assert {"val_mae_ratio", "val_mae_quadratic", "train_mae_ratio"} <= set(got["floor"][0])
    assert got["pairs"][0]["group"] == "lone" and got["pairs"][0]["n"] > 0
    table = subprocess.run([sys.executable, str(SCRIPT), str(blob_dataset)],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "blob counter" in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--distances", "3,2"], "positive, finite and increasing"),
    (["--distances", "2,nan"], "positive, finite and increasing"),
    (["--distances", "two"], "comma-separated numbers"),
    (["--distances", ""], "--distances is empty"),
    (["--fit", "nosuch"], "nosuch.h5 not found"),
])
def test_bad_input_is_one_line(blob_dataset: Path, args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), str(blob_dataset), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_missing_folder_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "prepare cells" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
