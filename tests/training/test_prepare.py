"""``streamcount prepare`` end to end on fixtures, the HDF5 store, and the real data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamcount.cli import main
from streamcount.errors import InputError
from streamcount.training.datasets.base import Sample
from streamcount.training.store import SplitWriter, read_split, split_info
from tests.training.test_datasets import (
    SHARED,
    make_cells,
    make_mall,
    make_points_images,
    make_shanghaitech,
    make_ucsd,
    write_points_annotations,
)

h5py = pytest.importorskip("h5py", reason="the train extra (h5py) is not installed")


def _check_split(path: Path, n: int | None = None) -> list[dict]:
    rows = read_split(path)
    if n is not None:
        assert len(rows) == n
    for r in rows:
        assert r["count"] == len(r["points"])
        assert r["density"].shape == r["image"].shape[:2]
        assert float(r["density"].astype(np.float64).sum()) == pytest.approx(r["count"],
                                                                             rel=1e-3, abs=1e-4)
    return rows


def test_prepare_mall_writes_train_val_and_skips_empty_test(tmp_path: Path) -> None:
    make_mall(tmp_path / "mall", n_frames=10)
    out = tmp_path / "out"
    assert main(["prepare", "mall", "--root", str(tmp_path / "mall"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.h5", "val.h5"]
    train = _check_split(out / "train.h5", 8)
    val = _check_split(out / "val.h5", 2)
    assert [r["name"] for r in val] == ["seq_000009", "seq_000010"]  # last block of the video
    assert train[0]["roi"] is not None
    info = split_info(out / "train.h5")
    assert info["source"] == "mall" and info["split"] == "train"
    assert info["kernel"] == "perspective" and info["sigma"] == 4.0
    assert info["density_scale"] == 1.0 and info["n_samples"] == 8
    assert info["created_by"].startswith("streamcount ")


@pytest.mark.parametrize("scale", [0.5, 0.3])
def test_prepare_scale_keeps_counts(tmp_path: Path, scale: float) -> None:
    pts = make_mall(tmp_path / "mall", n_frames=4)
    out = tmp_path / "out"
    args = ["prepare", "mall", "--root", str(tmp_path / "mall"), "--out", str(out),
            "--scale", str(scale), "--val-fraction", "0"]
    assert main(args) == 0
    rows = _check_split(out / "train.h5", 4)
    assert [r["count"] for r in rows] == [len(p) for p in pts]
    assert rows[0]["image"].shape[:2] == (round(48 * scale), round(64 * scale))
    info = split_info(out / "train.h5")
    assert info["scale"] == scale and info["sigma"] == pytest.approx(4.0 * scale)
    assert not (out / "val.h5").exists()


@pytest.mark.parametrize(
    ("fmt", "make", "extra", "expect"),
    [
        ("cells", make_cells, [], {"train": 5, "val": 1}),
        ("cells", make_cells, ["--n-train", "4"], {"train": 4, "val": 2}),
        ("shanghaitech", make_shanghaitech, ["--kernel", "adaptive"],
         {"train": 3, "val": 1, "test": 2}),
        ("ucsd", make_ucsd, [], {"train": 2, "val": 1, "test": 3}),
        ("ucsd", make_ucsd, ["--kernel", "fixed", "--limit", "1"],
         {"train": 1, "val": 1, "test": 1}),
    ],
)
def test_prepare_formats(tmp_path: Path, fmt: str, make, extra: list[str],
                         expect: dict[str, int]) -> None:
    make(tmp_path / "data")
    out = tmp_path / "out"
    args = ["prepare", fmt, "--root", str(tmp_path / "data"), "--out", str(out), *extra]
    assert main(args) == 0
    got = {p.stem: split_info(p)["n_samples"] for p in out.glob("*.h5")}
    assert got == expect
    for p in out.glob("*.h5"):
        _check_split(p)
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("fmt", ["csv", "labelstudio"])
def test_prepare_points(tmp_path: Path, fmt: str) -> None:
    make_points_images(tmp_path / "cam")
    ann = write_points_annotations(tmp_path / "cam", fmt)
    out = tmp_path / "out"
    args = ["prepare", "points", "--root", str(tmp_path / "cam"), "--out", str(out),
            "--annotations", str(ann), "--val-fraction", "0.34"]
    assert main(args) == 0
    rows = _check_split(out / "train.h5") + _check_split(out / "val.h5")
    assert sorted(r["count"] for r in rows) == [0, 1, 3]


@pytest.mark.parametrize("exclude", ["seq_000003", "seq_000009", "seq_000003,seq_000010"])
def test_prepare_exclude_leaves_the_other_samples_in_their_splits(tmp_path: Path,
                                                                  exclude: str) -> None:
    make_mall(tmp_path / "mall", n_frames=10)
    base = ["prepare", "mall", "--root", str(tmp_path / "mall"), "--val-fraction", "0.3"]
    assert main([*base, "--out", str(tmp_path / "all")]) == 0
    assert main([*base, "--out", str(tmp_path / "less"), "--exclude", exclude]) == 0
    gone = set(exclude.split(","))
    for split in ("train", "val"):
        before = [r["name"] for r in _check_split(tmp_path / "all" / f"{split}.h5")]
        after = [r["name"] for r in _check_split(tmp_path / "less" / f"{split}.h5")]
        assert after == [n for n in before if n not in gone]
        assert split_info(tmp_path / "less" / f"{split}.h5")["excluded"] == exclude
    assert split_info(tmp_path / "all" / "train.h5")["excluded"] == ""


def test_prepare_folds_validate_on_every_image_once(tmp_path: Path) -> None:
    """``--fold 0..4`` at the default fraction: five splits whose validation images are the
    whole set, each recorded in the files it wrote."""
    make_cells(tmp_path / "cells", indices=range(1, 12))
    seen: list[str] = []
    for fold in range(5):
        out = tmp_path / f"fold{fold}"
        argv = ["prepare", "cells", "--root", str(tmp_path / "cells"), "--out", str(out),
                "--fold", str(fold)]
        assert main(argv) == 0
        val = [r["name"] for r in _check_split(out / "val.h5")]
        train = [r["name"] for r in _check_split(out / "train.h5")]
        assert sorted(val + train) == [f"{i:03d}" for i in range(1, 12)]
        assert split_info(out / "val.h5")["fold"] == fold
        seen += val
    assert sorted(seen) == [f"{i:03d}" for i in range(1, 12)]


def test_prepare_removes_stale_split(tmp_path: Path) -> None:
    make_mall(tmp_path / "mall", n_frames=5)
    out = tmp_path / "out"
    base = ["prepare", "mall", "--root", str(tmp_path / "mall"), "--out", str(out)]
    assert main(base) == 0 and (out / "val.h5").exists()
    assert main([*base, "--val-fraction", "0"]) == 0
    assert not (out / "val.h5").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cells", "--root", "{tmp}/none"], "does not exist"),
        (["mall", "--root", "{tmp}/mall", "--n-train", "3"], "cells format only"),
        (["cells", "--root", "{tmp}/cells", "--scale", "0"], "--scale"),
        (["cells", "--root", "{tmp}/cells", "--kernel", "perspective"], "no perspective map"),
        (["cells", "--root", "{tmp}/cells", "--val-fraction", "1.5"], "val-fraction"),
        (["cells", "--root", "{tmp}/empty"], "no NNNcell.png"),
        (["cells", "--root", "{tmp}/cells", "--exclude", "001,999"], "--exclude 999: no such"),
        (["cells", "--root", "{tmp}/cells", "--fold", "5"], "--fold must be from 0 to 4"),
        (["mall", "--root", "{tmp}/mall", "--fold", "0", "--val-blocks", "2"], "exclude each"),
        (["cells", "--root", "{tmp}/cells", "--fold", "0", "--n-train", "3"], "nothing to fold"),
    ],
)
def test_prepare_bad_input_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     args: list[str], message: str) -> None:
    make_cells(tmp_path / "cells")
    make_mall(tmp_path / "mall", n_frames=2)
    (tmp_path / "empty").mkdir()
    argv = ["prepare", *[a.format(tmp=tmp_path) for a in args], "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_store_roundtrip_and_atomic_write(tmp_path: Path) -> None:
    s = Sample("x", np.zeros((5, 7, 1), np.uint8), np.array([[1, 2]], np.float32),
               roi=np.ones((5, 7), np.uint8))
    path = tmp_path / "train.h5"
    with pytest.raises(RuntimeError), SplitWriter(path, {"source": "t"}) as w:
        w.add(s, np.zeros((5, 7), np.float32))
        raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())
    with SplitWriter(path, {"source": "t", "split": "train"}) as w:
        w.add(s, np.full((5, 7), 1 / 35, np.float32))
    rows = read_split(path)
    assert rows[0]["name"] == "x" and rows[0]["image"].shape == (5, 7, 1)
    assert rows[0]["roi"].shape == (5, 7)
    assert split_info(path)["n_samples"] == 1


@pytest.mark.parametrize("where", ["create_group", "close"])
def test_store_ctrl_c_while_opening_or_closing_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """A Ctrl-C inside ``__enter__`` (where ``__exit__`` never runs) or while the file is being
    closed leaves neither a ``.tmp`` nor a half-written split (CI once caught the first)."""
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    target = h5py.Group if where == "create_group" else h5py.File
    real = getattr(target, where)
    calls = {"n": 0}

    def patched(self: object, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            interrupt()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(target, where, patched)
    s = Sample("x", np.zeros((5, 7, 1), np.uint8), np.array([[1, 2]], np.float32))
    path = tmp_path / "train.h5"
    with pytest.raises(KeyboardInterrupt), SplitWriter(path, {"source": "t"}) as w:
        w.add(s, np.zeros((5, 7), np.float32))
    assert calls["n"] >= 1
    assert not list(tmp_path.iterdir())


def test_store_rejects_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "a.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5 file"):
        read_split(tmp_path / "a.h5")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not a streamcount split"):
        split_info(tmp_path / "b.h5")
    with pytest.raises(InputError, match="does not exist"):
        read_split(tmp_path / "c.h5")


def test_prepare_module_import_is_light() -> None:
    code = ("import sys, streamcount.training.prepare, streamcount.training.datasets, "
            "streamcount.training.density; "
            "print(sorted(m for m in ('torch', 'h5py', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("fmt", "folder", "extra"),
    [("cells", "vgg-cells", []), ("mall", "mall", []),
     ("mall", "mall", ["--scale", "0.5"]), ("shanghaitech", "shanghaitech-b", [])],
)
def test_prepare_shared_data(tmp_path: Path, fmt: str, folder: str, extra: list[str]) -> None:
    root = SHARED / folder
    if not root.is_dir():
        pytest.skip("shared data absent")
    args = ["prepare", fmt, "--root", str(root), "--out", str(tmp_path), "--limit", "2", *extra]
    assert main(args) == 0
    for name in ("train", "val"):
        rows = _check_split(tmp_path / f"{name}.h5", 2)
        assert all(r["count"] > 0 for r in rows)
    assert not (tmp_path / "test.h5").exists()
