"""Dataset readers on small fixtures written in each original format, plus the real data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcount.errors import InputError
from streamcount.training.datasets import formats, get_reader, keys, read
from streamcount.training.datasets.splits import carve_validation

scipy = pytest.importorskip("scipy", reason="the train extra (scipy) is not installed")
pytest.importorskip("scipy.io")  # savemat and loadmat below

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# ----------------------------------------------------------------------------- fixture writers


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb[:, :, ::-1] if rgb.ndim == 3 else rgb
    assert cv2.imwrite(str(path), img)


def make_cells(root: Path, indices: range = range(1, 7), size: int = 32) -> dict[str, int]:
    """NNNcell.png + NNNdots.png with 3..8 red dots each; returns counts."""
    root.mkdir(parents=True, exist_ok=True)
    counts = {}
    for i in indices:
        rng = np.random.default_rng(i)
        n = 3 + i % 6
        flat = rng.choice(size * size, size=n, replace=False)
        dots = np.zeros((size, size, 3), np.uint8)
        dots[flat // size, flat % size] = (255, 0, 0)
        _write(root / f"{i:03d}cell.png", _rgb(size, size, i))
        _write(root / f"{i:03d}dots.png", dots)
        counts[f"{i:03d}"] = n
    return counts


def _struct(**fields: object) -> np.ndarray:
    arr = np.empty((1, 1), dtype=[(k, "O") for k in fields])
    for k, v in fields.items():
        arr[0, 0][k] = v
    return arr


def _cells(items: list[np.ndarray]) -> np.ndarray:
    out = np.empty((1, len(items)), dtype=object)
    for i, it in enumerate(items):
        out[0, i] = it
    return out


def mall_points(n_frames: int, hw: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    """1-based (x, y) points per frame, including ones on the border."""
    out = []
    for i in range(n_frames):
        rng = np.random.default_rng(100 + i)
        pts = rng.uniform(1, [hw[1], hw[0]], size=(2 + i % 4, 2))
        out.append(np.vstack([pts, [[1.0, 1.0]]]))
    return out


def make_mall(root: Path, n_frames: int = 10, n_gt: int | None = None,
              hw: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    """A Mall-format folder: frames/seq_XXXXXX.jpg, mall_gt.mat, perspective_roi.mat."""
    pts = mall_points(n_gt or n_frames, hw)
    for i in range(n_frames):
        _write(root / "frames" / f"seq_{i + 1:06d}.jpg", _rgb(*hw, i))
    frame = _cells([_struct(loc=p) for p in pts])
    count = np.array([[len(p)] for p in pts], np.uint8)
    scipy.io.savemat(root / "mall_gt.mat", {"frame": frame, "count": count})
    mask = np.zeros(hw, np.uint8)
    mask[5:, :] = 1
    pmap = np.tile(np.linspace(15, 0.8, hw[0])[:, None], (1, hw[1]))
    scipy.io.savemat(root / "perspective_roi.mat", {"roi": _struct(mask=mask), "pMapN": pmap})
    return pts


def make_shanghaitech(root: Path, n_train: int = 4, n_test: int | None = 2,
                      hw: tuple[int, int] = (40, 56)) -> dict[str, int]:
    """A ShanghaiTech part folder with train_data (and test_data unless n_test is None)."""
    counts = {}
    parts = [("train_data", n_train)] + ([("test_data", n_test)] if n_test is not None else [])
    for folder, n in parts:
        for i in range(1, n + 1):
            _write(root / folder / "images" / f"IMG_{i}.jpg", _rgb(*hw, i))
            rng = np.random.default_rng(i)
            loc = rng.uniform(1, [hw[1], hw[0]], size=(i + 2, 2))
            info = _cells([_struct(location=loc, number=np.array([[len(loc)]], np.uint16))])
            (root / folder / "ground-truth").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(root / folder / "ground-truth" / f"GT_IMG_{i}.mat",
                             {"image_info": info})
            counts[f"{folder}/IMG_{i}"] = len(loc)
    return counts


UCSD_HW = (158, 238)


def make_ucsd(root: Path, seqs: tuple[int, ...] = (2, 3), n_frames: int = 3,
              roi_as_polygon: bool = False) -> dict[str, np.ndarray]:
    """The published vidf1_33 layout for a few sequences and frames; returns 1-based xyz."""
    cvpr = root / "vidf-cvpr"
    cvpr.mkdir(parents=True, exist_ok=True)
    out = {}
    for s in seqs:
        locs = []
        for f in range(1, n_frames + 1):
            grey = np.random.default_rng(s * 1000 + f).integers(0, 255, UCSD_HW, dtype=np.uint8)
            name = f"vidf1_33_{s:03d}_f{f:03d}"
            _write(root / "vidf" / f"vidf1_33_{s:03d}.y" / f"{name}.png", grey)
            rng = np.random.default_rng(s * 10 + f)
            xyz = np.column_stack([rng.uniform(1, 238, 5 + f), rng.uniform(1, 158, 5 + f),
                                   np.ones(5 + f)])
            locs.append(xyz)
            out[name] = xyz
        scipy.io.savemat(cvpr / f"vidf1_33_{s:03d}_frame_full.mat",
                         {"frame": _cells([_struct(loc=x) for x in locs])})
    mask = np.zeros(UCSD_HW, np.uint8)
    mask[20:140, 30:200] = 1
    if roi_as_polygon:
        roi = _struct(xi=np.array([[31.0], [201.0], [201.0], [31.0]]),
                      yi=np.array([[21.0], [21.0], [141.0], [141.0]]))
    else:
        roi = _struct(mask=mask.astype(bool))
    scipy.io.savemat(cvpr / "vidf1_33_roi_mainwalkway.mat", {"roi": roi})
    pmap = np.tile(np.linspace(6.0, 1.0, UCSD_HW[0])[:, None], (1, UCSD_HW[1]))
    scipy.io.savemat(cvpr / "vidf1_33_dmap3.mat", {"dmap": _struct(pmapxy=pmap)})
    return out


POINTS = {
    "a.jpg": [[3.0, 4.0], [10.5, 20.25], [30.0, 2.0]],
    "b.png": [[0.0, 0.0]],
    "c.jpg": [],
}
POINTS_HW = (24, 32)


def make_points_images(root: Path) -> None:
    for i, name in enumerate(POINTS):
        _write(root / name, _rgb(*POINTS_HW, i))


def write_points_annotations(root: Path, fmt: str) -> Path:
    """Write POINTS (0-based pixel centres) in one of the supported formats."""
    h, w = POINTS_HW
    if fmt == "csv":
        lines = ["image,x,y"]
        for name, pts in POINTS.items():
            lines += [f"{name},{x},{y}" for x, y in pts] or [f"{name},,"]
        path = root / "annotations.csv"
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "json":
        path = root / "annotations.json"
        path.write_text(json.dumps(POINTS))
    elif fmt == "cvat":
        imgs = []
        for i, (name, pts) in enumerate(POINTS.items()):
            body = ""
            if pts:
                pp = ";".join(f"{x + 0.5:.2f},{y + 0.5:.2f}" for x, y in pts)
                body = f'<points label="person" occluded="0" points="{pp}" z_order="0"/>'
            imgs.append(f'<image id="{i}" name="{name}" width="{w}" height="{h}">{body}</image>')
        path = root / "annotations.xml"
        path.write_text('<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1'
                        "</version>" + "".join(imgs) + "</annotations>")
    elif fmt == "labelstudio":
        tasks = []
        for i, (name, pts) in enumerate(POINTS.items()):
            result = [{"id": f"r{j}", "type": "keypointlabels", "original_width": w,
                       "original_height": h, "from_name": "kp", "to_name": "image",
                       "value": {"x": (x + 0.5) / w * 100, "y": (y + 0.5) / h * 100,
                                 "width": 0.5, "keypointlabels": ["person"]}}
                      for j, (x, y) in enumerate(pts)]
            tasks.append({"id": i + 1, "data": {"image": f"/data/upload/1/0a1b2c3d-{name}"},
                          "annotations": [{"id": i, "result": result}]})
        path = root / "export.json"
        path.write_text(json.dumps(tasks))
    else:  # pragma: no cover
        raise ValueError(fmt)
    return path


# ----------------------------------------------------------------------------- registry


def test_registry_lists_all_formats() -> None:
    assert list(formats()) == ["cells", "mall", "points", "shanghaitech", "ucsd"]
    for name, info in formats().items():
        mod = info.load()
        assert mod.FORMAT.name == name and info.module == mod.__name__
        assert {"train", "test"} <= set(mod.SPLITS)
        assert callable(mod.keys) and callable(mod.read)


def test_unknown_format_and_option(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown dataset format"):
        get_reader("nope")
    make_cells(tmp_path)
    with pytest.raises(InputError, match="do not apply"):
        keys("cells", tmp_path, "train", annotations="x.csv")


# ----------------------------------------------------------------------------- cells


def test_cells_reads_red_dots(tmp_path: Path) -> None:
    counts = make_cells(tmp_path)
    samples = list(read("cells", tmp_path, "train"))
    assert [s.name for s in samples] == sorted(counts)
    for s in samples:
        assert s.count == counts[s.name]
        assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8
        assert s.points.dtype == np.float32
    assert keys("cells", tmp_path, "test") == []


def test_cells_n_train_draws_from_pool_and_rest_is_val(tmp_path: Path) -> None:
    make_cells(tmp_path, range(1, 11))
    make_cells(tmp_path, range(101, 103))
    train = keys("cells", tmp_path, "train", n_train=4, seed=1)
    val = keys("cells", tmp_path, "val", n_train=4, seed=1)
    assert len(train) == 4 and len(val) == 6 and not set(train) & set(val)
    assert train == keys("cells", tmp_path, "train", n_train=4, seed=1)
    assert keys("cells", tmp_path, "test") == ["101", "102"]
    with pytest.raises(InputError, match="n-train"):
        keys("cells", tmp_path, "train", n_train=50)


# ----------------------------------------------------------------------------- mall


def test_mall_points_are_zero_based_with_roi_and_perspective(tmp_path: Path) -> None:
    pts = make_mall(tmp_path, n_frames=5)
    samples = list(read("mall", tmp_path, "train"))
    assert [s.name for s in samples] == [f"seq_{i:06d}" for i in range(1, 6)]
    for s, p in zip(samples, pts, strict=True):
        np.testing.assert_allclose(s.points, p - 1, atol=1e-5)
        assert s.roi.shape == (48, 64) and s.roi.dtype == np.uint8
        assert s.perspective[0, 0] < s.perspective[-1, 0]  # near the camera = larger scale
        assert s.meta["frame"] == int(s.name[4:])
    assert keys("mall", tmp_path, "test") == []  # partial copy: empty test split


def test_mall_frames_beyond_ground_truth(tmp_path: Path) -> None:
    make_mall(tmp_path, n_frames=4, n_gt=3)
    with pytest.raises(InputError, match="seq_000004 has no annotation"):
        list(read("mall", tmp_path, "train"))


# ----------------------------------------------------------------------------- ucsd


@pytest.mark.parametrize("polygon", [False, True])
def test_ucsd_published_layout(tmp_path: Path, polygon: bool) -> None:
    truth = make_ucsd(tmp_path, roi_as_polygon=polygon)
    train = keys("ucsd", tmp_path, "train")
    test = keys("ucsd", tmp_path, "test")
    assert train == [f"vidf1_33_003_f{f:03d}" for f in (1, 2, 3)]  # frames 601-603
    assert test == [f"vidf1_33_002_f{f:03d}" for f in (1, 2, 3)]  # frames 401-403
    for s in read("ucsd", tmp_path, "train"):
        assert s.image.shape == (*UCSD_HW, 1)
        np.testing.assert_allclose(s.points, truth[s.name][:, :2] - 1, atol=1e-4)
        assert s.roi.shape == UCSD_HW and s.roi[80, 100] == 1 and s.roi[0, 0] == 0
        assert s.perspective.shape == UCSD_HW
        assert s.perspective[0, 0] < s.perspective[-1, 0]
        assert 601 <= s.meta["frame"] <= 603


def test_ucsd_missing_annotation_file(tmp_path: Path) -> None:
    make_ucsd(tmp_path)
    (tmp_path / "vidf-cvpr" / "vidf1_33_003_frame_full.mat").unlink()
    with pytest.raises(InputError, match="sequence 003 have no annotation"):
        list(read("ucsd", tmp_path, "train"))


# ----------------------------------------------------------------------------- shanghaitech


def test_shanghaitech_train_and_test(tmp_path: Path) -> None:
    counts = make_shanghaitech(tmp_path)
    assert keys("shanghaitech", tmp_path, "train") == ["IMG_1", "IMG_2", "IMG_3", "IMG_4"]
    for split, folder in (("train", "train_data"), ("test", "test_data")):
        for s in read("shanghaitech", tmp_path, split):
            assert s.count == counts[f"{folder}/{s.name}"]
            assert s.points.min() >= -0.5


def test_shanghaitech_without_test_data_is_empty(tmp_path: Path) -> None:
    make_shanghaitech(tmp_path, n_test=None)
    assert keys("shanghaitech", tmp_path, "test") == []
    assert list(read("shanghaitech", tmp_path, "test")) == []


# ----------------------------------------------------------------------------- points


@pytest.mark.parametrize("fmt", ["csv", "json", "cvat", "labelstudio"])
def test_points_formats_agree(tmp_path: Path, fmt: str) -> None:
    make_points_images(tmp_path)
    write_points_annotations(tmp_path, fmt)
    samples = {s.name: s for s in read("points", tmp_path, "train")}
    assert sorted(samples) == sorted(POINTS)
    for name, pts in POINTS.items():
        expect = np.asarray(pts, np.float32).reshape(-1, 2)
        np.testing.assert_allclose(samples[name].points, expect, atol=0.02)
    assert keys("points", tmp_path, "test") == []


def test_points_outside_are_dropped_with_warning(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    make_points_images(tmp_path)
    (tmp_path / "annotations.csv").write_text("image,x,y\na.jpg,1,1\na.jpg,40,3\nb.png,,\n"
                                              "c.jpg,2,2\nc.jpg,-1.2,5\n")
    with caplog.at_level(logging.WARNING):
        samples = {s.name: s for s in read("points", tmp_path, "train")}
    assert samples["a.jpg"].count == 1 and samples["b.png"].count == 0
    # within one pixel of the border: kept, moved onto the border pixel
    np.testing.assert_allclose(samples["c.jpg"].points, [[2, 2], [0, 5]])
    assert "a.jpg" in caplog.text and "outside" in caplog.text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("image,x,y\na.jpg,1,1\na.jpg,abc,2\n", "line 3: x='abc'"),
        ("image,x,y\na.jpg,1,\n", "line 2: x and y"),
        ("name,col\na.jpg,1\n", "header image,x,y"),
        ("image,x,y\nmissing.jpg,1,1\n", "'missing.jpg'"),
    ],
)
def test_points_bad_csv(tmp_path: Path, content: str, match: str) -> None:
    make_points_images(tmp_path)
    (tmp_path / "annotations.csv").write_text(content)
    with pytest.raises(InputError, match=match):
        list(read("points", tmp_path, "train"))


def test_points_unannotated_images_are_skipped(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    make_points_images(tmp_path)
    (tmp_path / "annotations.csv").write_text("image,x,y\na.jpg,1,1\n")
    with caplog.at_level(logging.WARNING):
        assert keys("points", tmp_path, "train") == ["a.jpg"]
    assert "2 image(s)" in caplog.text


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fmt", list(formats()))
def test_missing_folder(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InputError, match="does not exist"):
        keys(fmt, tmp_path / "nowhere", "train")


def test_mat_without_expected_keys(tmp_path: Path) -> None:
    make_mall(tmp_path / "mall", n_frames=2)
    scipy.io.savemat(tmp_path / "mall" / "mall_gt.mat", {"count": np.array([[3]])})
    with pytest.raises(InputError, match="no variable frame"):
        list(read("mall", tmp_path / "mall", "train"))

    make_shanghaitech(tmp_path / "shb", n_train=1, n_test=None)
    scipy.io.savemat(tmp_path / "shb" / "train_data" / "ground-truth" / "GT_IMG_1.mat",
                     {"annPoints": np.zeros((2, 2))})
    with pytest.raises(InputError, match="no variable image_info"):
        list(read("shanghaitech", tmp_path / "shb", "train"))

    make_ucsd(tmp_path / "ucsd", seqs=(3,), n_frames=1)
    scipy.io.savemat(tmp_path / "ucsd" / "vidf-cvpr" / "vidf1_33_003_frame_full.mat",
                     {"frame": _cells([_struct(pos=np.zeros((1, 3)))])})
    with pytest.raises(InputError, match="no field 'loc'"):
        list(read("ucsd", tmp_path / "ucsd", "train"))


def test_images_without_annotations_and_the_reverse(tmp_path: Path) -> None:
    make_cells(tmp_path / "cells")
    (tmp_path / "cells" / "002dots.png").unlink()
    with pytest.raises(InputError, match=r"002cell\.png has no 002dots\.png"):
        keys("cells", tmp_path / "cells", "train")

    make_shanghaitech(tmp_path / "shb", n_test=None)
    (tmp_path / "shb" / "train_data" / "ground-truth" / "GT_IMG_3.mat").unlink()
    with pytest.raises(InputError, match=r"IMG_3\.jpg has no ground-truth"):
        keys("shanghaitech", tmp_path / "shb", "train")

    make_shanghaitech(tmp_path / "shb2", n_test=None)
    (tmp_path / "shb2" / "train_data" / "images" / "IMG_2.jpg").unlink()
    with pytest.raises(InputError, match="without image"):
        keys("shanghaitech", tmp_path / "shb2", "train")


@pytest.mark.parametrize("fmt", ["cells", "shanghaitech", "mall"])
def test_corrupt_image(tmp_path: Path, fmt: str) -> None:
    if fmt == "cells":
        make_cells(tmp_path)
        bad = tmp_path / "003cell.png"
    elif fmt == "shanghaitech":
        make_shanghaitech(tmp_path, n_test=None)
        bad = tmp_path / "train_data" / "images" / "IMG_2.jpg"
    else:
        make_mall(tmp_path, n_frames=3)
        bad = tmp_path / "frames" / "seq_000002.jpg"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=f"cannot decode image .*{bad.name}"):
        list(read(fmt, tmp_path, "train"))


def test_empty_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no NNNcell\.png"):
        keys("cells", tmp_path, "train")
    (tmp_path / "frames").mkdir()
    with pytest.raises(InputError, match=r"no seq_XXXXXX\.jpg"):
        keys("mall", tmp_path, "train")


# ----------------------------------------------------------------------------- splits


def test_carve_validation_video_is_last_block() -> None:
    frames = [f"seq_{i:06d}" for i in range(1, 801)]
    train, val = carve_validation(frames, 0.2, kind="video")
    assert len(val) == 160 and val[0] == "seq_000641" and val[-1] == "seq_000800"
    assert train == frames[:640]


def test_carve_validation_images_is_seeded_subset() -> None:
    items = [str(i) for i in range(50)]
    t1, v1 = carve_validation(items, 0.2, kind="images", seed=3)
    _, v2 = carve_validation(items, 0.2, kind="images", seed=3)
    assert v1 == v2 and len(v1) == 10 and sorted(t1 + v1, key=int) == items
    assert v1 != carve_validation(items, 0.2, kind="images", seed=4)[1]
    assert carve_validation(items, 0.0)[1] == []
    with pytest.raises(InputError):
        carve_validation(items, 1.0)


@pytest.mark.parametrize(("kind", "n", "fraction"),
                         [("images", 100, 0.2), ("images", 23, 0.25), ("video", 800, 0.2),
                          ("video", 11, 1 / 3)])
def test_carve_validation_folds_partition_the_keys(kind: str, n: int, fraction: float) -> None:
    """K folds validate on every key exactly once, each fold's train being the rest."""
    items = [f"k{i:04d}" for i in range(n)]
    k = round(1 / fraction)
    vals = []
    for fold in range(k):
        train, val = carve_validation(items, fraction, kind=kind, seed=7, fold=fold)
        assert sorted(train + val) == items and not set(train) & set(val)
        assert train == [x for x in items if x in train]  # original order kept
        assert n // k <= len(val) <= n // k + 1
        vals.append(val)
    assert sorted(x for v in vals for x in v) == items
    if kind == "video":  # contiguous stretches of time, in order
        assert [x for v in vals for x in v] == items
    else:  # a seeded shuffle: another seed gives other folds
        assert carve_validation(items, fraction, kind=kind, seed=8, fold=0)[1] != vals[0]


@pytest.mark.parametrize(("fraction", "fold", "message"),
                         [(0.2, 5, "from 0 to 4"), (0.2, -1, "from 0 to 4"),
                          (0.6, 0, "at most 0.5"), (0.0, 0, "at most 0.5")])
def test_carve_validation_rejects_impossible_folds(fraction: float, fold: int,
                                                   message: str) -> None:
    with pytest.raises(InputError, match=message):
        carve_validation([str(i) for i in range(20)], fraction, fold=fold)
    with pytest.raises(InputError, match="at least 5 samples"):
        carve_validation(["a", "b", "c"], 0.2, fold=0)


# ----------------------------------------------------------------------------- real data

shared = pytest.mark.shared_data


@shared
def test_shared_cells() -> None:
    root = SHARED / "vgg-cells"
    if not root.is_dir():
        pytest.skip("shared data absent")
    assert len(keys("cells", root, "train")) == 100
    s = next(read("cells", root, "train", keys=["001"]))
    assert 74 <= s.count <= 317 and s.image.shape == (256, 256, 3)


@shared
def test_shared_mall_counts_match_count_variable() -> None:
    root = SHARED / "mall"
    if not root.is_dir():
        pytest.skip("shared data absent")
    count = scipy.io.loadmat(root / "mall_gt.mat")["count"].reshape(-1)
    names = keys("mall", root, "train")[:3]
    for s in read("mall", root, "train", keys=names):
        assert s.count == int(count[s.meta["frame"] - 1])
        assert s.roi is not None and s.perspective is not None


@shared
def test_shared_shanghaitech_counts_match_number() -> None:
    root = SHARED / "shanghaitech-b"
    if not root.is_dir():
        pytest.skip("shared data absent")
    assert len(keys("shanghaitech", root, "train")) == 400
    s = next(read("shanghaitech", root, "train", keys=["IMG_1"]))
    info = scipy.io.loadmat(root / "train_data" / "ground-truth" / "GT_IMG_1.mat")["image_info"]
    assert s.count == int(info[0, 0][0, 0]["number"].item())
