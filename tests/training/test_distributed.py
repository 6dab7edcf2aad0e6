"""Training under torchrun (DDP, gloo on CPU) matches one process and resumes across sizes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import REPO  # noqa: E402

ARGS = ["--filters", "4", "--epochs", "2", "--samples-per-epoch", "32", "--batch-size", "8",
        "--patch", "32", "--threads", "1", "--no-progress", "--seed", "3", "--ema-decay", "0"]


def _train(data: Path, out: Path, nproc: int, extra: list[str] | None = None) -> None:
    cmd = [sys.executable, "-m", "streamcount", "train", "--data", str(data), "--out", str(out),
           *ARGS, *(extra or [])]  # fmt: skip
    if nproc > 1:
        torchrun = shutil.which("torchrun") or "torchrun"
        cmd = [torchrun, "--standalone", f"--nproc_per_node={nproc}", "-m", "streamcount",
               *cmd[3:]]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out_ = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert out_.returncode == 0, out_.stderr[-2000:]


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["raw_model"]


def test_two_processes_match_one(blob_dataset: Path, tmp_path: Path) -> None:
    _train(blob_dataset, tmp_path / "one", 1)
    _train(blob_dataset, tmp_path / "two", 2)
    a, b = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "two" / "last.pt")
    # BatchNorm normalizes each rank's half batch with its own statistics, so the runs are
    # close, not identical: compare all learned parameters as one vector.
    keys = [k for k, v in a.items() if v.is_floating_point() and "running" not in k]
    va = torch.cat([a[k].flatten() for k in keys])
    vb = torch.cat([b[k].flatten() for k in keys])
    assert float((va - vb).norm() / va.norm()) < 0.05
    # Only rank 0 writes: one log with a header and one row per epoch.
    assert len((tmp_path / "two" / "log.csv").read_text().splitlines()) == 3


def test_resume_with_another_world_size(blob_dataset: Path, tmp_path: Path) -> None:
    _train(blob_dataset, tmp_path / "r", 2, ["--epochs", "1"])
    state = torch.load(tmp_path / "r" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 0
    # Same schedule length is part of the recipe: resume a 1-epoch run as it was, one process.
    _train(blob_dataset, tmp_path / "r", 1, ["--epochs", "1", "--resume"])
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["epoch"] == 0
