"""benchmarks/split_images.py: the originals of a prepared split, linked for `export --int8`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "split_images.py"


def _originals(folder: Path, names: list[str]) -> None:
    import cv2

    folder.mkdir(parents=True)
    for n in names:
        cv2.imwrite(str(folder / f"{n}.png"), np.zeros((8, 8, 3), np.uint8))


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_links_exactly_the_images_of_the_split(blob_dataset: Path, tmp_path: Path) -> None:
    _originals(tmp_path / "all", [f"val{i}" for i in range(8)] + [f"train{i}" for i in range(3)])
    out = tmp_path / "cal"
    res = _run(blob_dataset / "val.h5", tmp_path / "all", "--out", out)
    assert res.returncode == 0, res.stderr
    links = sorted(p.name for p in out.iterdir())
    assert links == sorted(f"val{i}.png" for i in range(8))  # no training image among them
    assert all((out / n).is_symlink() and (out / n).resolve().parent == tmp_path / "all"
               for n in links)


@pytest.mark.parametrize("case", ["missing-image", "not-empty", "no-split"])
def test_refuses_in_one_line(blob_dataset: Path, tmp_path: Path, case: str) -> None:
    _originals(tmp_path / "all", [f"val{i}" for i in range(8 if case != "missing-image" else 7)])
    out = tmp_path / "cal"
    if case == "not-empty":
        out.mkdir()
        (out / "x.png").write_bytes(b"")
    split = blob_dataset / ("val.h5" if case != "no-split" else "nope.h5")
    res = _run(split, tmp_path / "all", "--out", out)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:")
    assert "Traceback" not in res.stderr
