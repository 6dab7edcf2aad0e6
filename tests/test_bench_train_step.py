"""benchmarks/bench_train_step.py: training-step speed of a network in each precision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_train_step.py"
#: A tiny network and batch: the script's mechanics, not this machine's speed.
TINY = ["--arch", "unet", "--model-arg", "filters=4", "--patch", "32", "--batch", "2",
        "--steps", "2", "--warmup", "1", "--rounds", "1", "--threads", "1"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


@pytest.mark.parametrize("precisions", ["fp32", "fp32,bf16", "bf16-weights,fp32"])
def test_json_reports_each_precision(precisions: str) -> None:
    proc = _run(*TINY, "--precisions", precisions, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["precision"] for r in out["results"]] == precisions.split(",")
    for r in out["results"]:
        assert r["steps"] == 2
        assert r["step_s"] > 0
        # crops a minute is the batch over the median step, not a separate measurement
        assert r["crops_per_minute"] == pytest.approx(60 * 2 / r["step_s"], rel=0.01)
    assert out["model_args"] == {"in_channels": 3, "filters": 4}
    assert out["patch"] == 32 and out["threads"] == 1
    assert "simd" in out["cpu"]


def test_table_names_the_cpu() -> None:
    proc = _run(*TINY)
    assert proc.returncode == 0, proc.stderr
    assert "fp32" in proc.stdout and "bf16" in proc.stdout
    assert "crops a minute" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--precisions", "fp8"], "unknown precision fp8"),
    (["--arch", "nope"], "unknown architecture 'nope'"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--arch", "unet", "--model-arg", "bogus=1"], "does not take these --model-arg values"),
    (["--model-arg", "novalue"], "expected KEY=VALUE"),
])
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
