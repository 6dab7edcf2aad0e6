"""Calibration from a few hand counts (no torch for the fit) and the --gain override."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcount.cli import main
from streamcount.engine import Counter
from tests.conftest import make_tiny_model

pytest.importorskip("onnx")


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """Five grey frames whose tiny-model count is known: 1e-3 * sum(grey / 255)."""
    d = tmp_path / "frames"
    d.mkdir()
    for i, level in enumerate((60, 90, 120, 150, 180)):
        cv2.imwrite(str(d / f"f{i}.png"), np.full((20, 30, 3), level, np.uint8))
    return d


def _model_count(level: int) -> float:
    return 1e-3 * 20 * 30 * level / 255


def test_gain_fitted_to_hand_counts_goes_into_a_model_copy(frames: Path, tmp_path: Path,
                                                           capsys) -> None:
    model = make_tiny_model(tmp_path / "m.onnx")
    true = [2 * _model_count(v) for v in (60, 90, 120, 150, 180)]  # the model counts half
    (frames / "counts.csv").write_text(
        "path,count\n" + "".join(f"f{i}.png,{c}\n" for i, c in enumerate(true)))
    out = tmp_path / "m-cal.onnx"
    assert main(["calibrate", str(model), "--counts", str(frames / "counts.csv"), "--out",
                 str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["gain"] == pytest.approx(2.0, rel=1e-4) and res["mae_after"] < 1e-3
    assert res["far_from_one"] is True  # 2.0 is outside 0.67-1.5: said plainly
    img = cv2.imread(str(frames / "f2.png"))
    assert Counter(out, device="cpu").count(img).count == pytest.approx(true[2], rel=1e-4)
    assert Counter(model, device="cpu", gain=2.0).count(img).count == pytest.approx(true[2],
                                                                                    rel=1e-4)


def test_far_gain_is_said_plainly(frames: Path, tmp_path: Path, capsys) -> None:
    model = make_tiny_model(tmp_path / "m.onnx")
    args = [f"--count={frames / f'f{i}.png'}={3 * _model_count(v)}"
            for i, v in enumerate((60, 90, 120))]
    assert main(["calibrate", str(model), *args, "--out", str(tmp_path / "c.onnx")]) == 0
    out = capsys.readouterr().out
    assert "count gain 3.000" in out and "far from 1" in out and "--init" in out


@pytest.mark.parametrize("rows,match", [("f0.png,abc\n", "not a number"),
                                        ("f0.png,-2\n", ">= 0"), ("nope.png,3\n", "not found"),
                                        ("f0.png\n", "expected path,count")])
def test_bad_hand_counts_are_one_line(frames: Path, tmp_path: Path, rows: str, match: str,
                                      capsys) -> None:
    (frames / "counts.csv").write_text("path,count\n" + rows)
    model = make_tiny_model(tmp_path / "m.onnx")
    assert main(["calibrate", str(model), "--counts", str(frames / "counts.csv")]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("gain", ["0", "-1", "nan", "1000"])
def test_gain_out_of_range(frames: Path, gain: str, capsys) -> None:
    assert main(["count", str(frames), "--model", "cells", "--gain", gain]) == 2
    assert "--gain must be between" in capsys.readouterr().err
