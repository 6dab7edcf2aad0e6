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


def test_an_interrupted_run_resumes_with_another_world_size(
    blob_dataset: Path, tmp_path: Path
) -> None:
    # One process, stopped as by a crash when the second of two epochs starts (after the first
    # epoch's last.pt was written) ...
    stop = (
        "import sys\n"
        "import streamcount.training.trainer as T\n"
        "train_epoch = T.Trainer._train_epoch\n"
        "def crash(self, epoch, *a, **k):\n"
        "    if epoch == 1:\n"
        "        raise SystemExit(9)\n"
        "    return train_epoch(self, epoch, *a, **k)\n"
        "T.Trainer._train_epoch = crash\n"
        "from streamcount.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "r"
    cmd = [sys.executable, "-c", stop, "train", "--data", str(blob_dataset), "--out", str(out),
           *ARGS]
    crashed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    first = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert first["epoch"] == 0
    log_before = (out / "log.csv").read_text().splitlines()
    assert len(log_before) == 2  # header and epoch 0
    # ... then continued by two processes: epoch 1 only, the log kept and extended.
    _train(blob_dataset, out, 2, ["--resume"])
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1
    log_after = (out / "log.csv").read_text().splitlines()
    assert log_after[:2] == log_before and len(log_after) == 3
    assert log_after[2].split(",")[0] == "1"
    keys = [k for k, v in first["raw_model"].items()
            if v.is_floating_point() and "running" not in k]
    moved = torch.cat([(last["raw_model"][k] - first["raw_model"][k]).flatten() for k in keys])
    assert float(moved.norm()) > 0  # epoch 1 trained
    # and it lands where one process running both epochs does (DDP's per-rank batch norm makes
    # it close, not identical: see the test above)
    _train(blob_dataset, tmp_path / "full", 1)
    full = _weights(tmp_path / "full" / "last.pt")
    va = torch.cat([full[k].flatten() for k in keys])
    vb = torch.cat([last["raw_model"][k].flatten() for k in keys])
    assert float((va - vb).norm() / va.norm()) < 0.05
