"""The ONNX Runtime engine: exact counts, batching, tiling, odd images, bad models."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from streamcount.engine import Counter
from streamcount.errors import DeviceError, InputError, ModelError
from tests.conftest import make_tiny_model


def expected(frame_grey: np.ndarray, weight: float = 1e-3) -> float:
    return weight * float(frame_grey.astype(np.float64).sum()) / 255.0


def test_count_is_integral_of_density(tiny_model: Path) -> None:
    c = Counter(tiny_model, device="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    r = c.count(frame)
    assert r.count == pytest.approx(expected(frame.mean(axis=2)), rel=1e-5)
    assert r.density.shape == (48, 64)
    assert float(r.density.sum()) == pytest.approx(r.count, rel=1e-5)
    assert c.device == "cpu" and r.latency_ms > 0


@pytest.mark.parametrize("host_threads", [1, 3])
def test_batch_equals_single(tiny_model: Path, host_threads: int) -> None:
    c = Counter(tiny_model, device="cpu", host_threads=host_threads)
    assert c.host_threads == host_threads
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(5)]
    frames.insert(2, rng.integers(0, 256, (33, 21, 3), dtype=np.uint8))  # another size
    frames.append(rng.integers(0, 256, (33, 21), dtype=np.uint8))  # grey, same size
    batch = c.count_batch(frames)
    single = [c.count(f) for f in frames]
    assert [r.count for r in batch] == pytest.approx([r.count for r in single], rel=1e-6)
    for b, s, f in zip(batch, single, frames, strict=True):  # each result is its own frame's
        assert b.density.shape == f.shape[:2]
        np.testing.assert_allclose(b.density, s.density, rtol=1e-5, atol=1e-9)
        assert b.batch == len(frames)


def test_engine_time_is_split_into_session_and_host(tiny_model: Path) -> None:
    c = Counter(tiny_model, device="cpu", host_threads=2)
    frames = [np.full((64, 80, 3), 128, np.uint8)] * 4
    r = c.count_batch(frames)[0]
    assert 0 < c.session_ms < r.latency_ms


def test_negative_host_threads_refused(tiny_model: Path) -> None:
    with pytest.raises(InputError, match="host threads"):
        Counter(tiny_model, device="cpu", host_threads=-1)


@pytest.mark.parametrize("max_side,overlap", [(64, 16), (40, 8), (24, 0)])
def test_tiling_loses_and_doubles_nothing(tiny_model: Path, max_side: int, overlap: int) -> None:
    frame = np.random.default_rng(2).integers(0, 256, (150, 230, 3), dtype=np.uint8)
    whole = Counter(tiny_model, device="cpu").count(frame)
    tiled_counter = Counter(tiny_model, device="cpu", max_side=max_side)
    tiled_counter.metadata.tile_overlap = overlap
    tiled = tiled_counter.count(frame)
    assert tiled.count == pytest.approx(whole.count, rel=1e-5)
    np.testing.assert_allclose(tiled.density, whole.density, rtol=1e-4, atol=1e-7)


def test_input_scale_resizes_once_and_keeps_density_in_frame_coordinates(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "half.onnx", input_scale=0.5)
    c = Counter(model, device="cpu")
    frame = np.full((120, 160, 3), 255, np.uint8)
    r = c.count(frame)
    assert r.count == pytest.approx(1e-3 * 60 * 80, rel=1e-5)  # counted at 80x60
    assert r.density.shape == (120, 160)
    assert float(r.density.sum()) == pytest.approx(r.count, rel=1e-3)


@pytest.mark.parametrize(
    "frame",
    [
        np.full((30, 40), 255, np.uint8),  # grey 2-D
        np.full((30, 40, 1), 255, np.uint8),  # grey 3-D
        np.full((30, 40, 4), 255, np.uint8),  # BGRA
        np.full((30, 40, 3), 65535, np.uint16),  # 16-bit
        np.full((1, 1, 3), 255, np.uint8),  # 1x1
    ],
    ids=["grey2d", "grey3d", "bgra", "uint16", "1x1"],
)
def test_odd_images_are_handled(tiny_model: Path, frame: np.ndarray) -> None:
    r = Counter(tiny_model, device="cpu").count(frame)
    h, w = frame.shape[:2]
    assert r.count == pytest.approx(1e-3 * h * w, rel=1e-3)


def test_huge_image_is_tiled(tiny_model: Path) -> None:
    frame = np.full((3000, 2500, 3), 255, np.uint8)
    r = Counter(tiny_model, device="cpu", max_side=1024).count(frame)
    assert r.count == pytest.approx(1e-3 * 3000 * 2500, rel=1e-4)


@pytest.mark.parametrize("bad", [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 7), np.uint8)])
def test_not_an_image(tiny_model: Path, bad: np.ndarray) -> None:
    with pytest.raises(InputError):
        Counter(tiny_model, device="cpu").count(bad)


def test_non_onnx_file(tmp_path: Path) -> None:
    p = tmp_path / "model.onnx"
    p.write_text("hello")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Counter(p, device="cpu")


def test_model_with_wrong_inputs(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="this model is built with `onnx` (train extra)")
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "flat.onnx"))
    with pytest.raises(ModelError, match="expected one N x C x H x W input"):
        Counter(tmp_path / "flat.onnx", device="cpu")


def test_missing_metadata_uses_defaults_with_warning(tmp_path: Path, caplog) -> None:
    model = make_tiny_model(tmp_path / "bare.onnx", meta=False)
    with caplog.at_level(logging.WARNING):
        c = Counter(model, device="cpu")
    assert "no streamcount metadata" in caplog.text
    assert c.metadata.density_scale == 1.0 and c.metadata.color_order == "RGB"


@pytest.mark.parametrize("name", ["nosuchmodel", "missing/dir/model.onnx"])
def test_unknown_model(name: str) -> None:
    with pytest.raises((ModelError, InputError)):
        Counter(name, device="cpu")


def test_cuda_request_fails_clearly_without_gpu(tiny_model: Path) -> None:
    from streamcount.providers import gpu_providers_present

    if gpu_providers_present()["cuda"]:
        pytest.skip("this machine has a usable NVIDIA driver")
    with pytest.raises(DeviceError, match="--device cuda is not usable"):
        Counter(tiny_model, device="cuda")
    assert Counter(tiny_model, device="auto").device == "cpu"


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="this model is built with `onnx` (train extra)")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])], [w],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    (tmp_path / "models").mkdir()
    onnx.save(m, str(tmp_path / "models" / "ok.onnx"), save_as_external_data=True,
              location="w.bin", size_threshold=0)
    assert Counter(tmp_path / "models" / "ok.onnx", device="cpu").count(
        np.full((4, 4, 3), 255, np.uint8)).count > 0
    (tmp_path / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    for e in m.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = "../secret.bin"
    onnx.save(m, str(tmp_path / "models" / "evil.onnx"))
    with pytest.raises(ModelError, match="outside the model's folder"):
        Counter(tmp_path / "models" / "evil.onnx", device="cpu")


@pytest.mark.parametrize("key,value,match", [
    ("density_scale", "0", "density_scale"), ("density_scale", "NaN", "density_scale"),
    ("density_scale", "-1", "density_scale"), ("std", "[0, 0, 0]", "std"),
    ("input_scale", "40", "input_scale"), ("input_scale", "NaN", "input_scale"),
    ("max_side", "0", "max_side"), ("tile_overlap", "-100", "tile_overlap"),
    ("mean", "[1, 2]", "mean"), ("in_channels", "7", "in_channels"),
])  # fmt: skip
def test_hostile_metadata_is_a_model_error(tmp_path: Path, key: str, value: str,
                                           match: str) -> None:
    onnx = pytest.importorskip("onnx", reason="this model is built with `onnx` (train extra)")

    path = make_tiny_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == f"streamcount.{key}":
            p.value = value
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match=match):
        Counter(path, device="cpu")
