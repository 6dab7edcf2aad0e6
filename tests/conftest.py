"""Shared fixtures: paths, the optional ../shared/data, tiny synthetic datasets."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Take SIGINT back when the suite was started in the background (`cmd &`, nohup).

    A non-interactive shell starts background jobs with SIGINT ignored, and children inherit
    that: the Ctrl-C tests would then test nothing. A Python handler, unlike SIG_IGN, is reset to
    the default in the children the tests start.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip the test when this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only the team's machines have it)")
    return SHARED_DATA


def blob_image(rng: np.random.Generator, h: int, w: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 'cells' image: ``n`` bright Gaussian blobs on a dark noisy background.

    Returns:
        (RGB uint8 image, N x 2 float32 points).
    """
    pts = np.stack([rng.uniform(3, w - 3, n), rng.uniform(3, h - 3, n)], 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.normal(20, 4, (h, w))
    for x, y in pts:
        img += 180 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2), pts


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared dataset (train.h5, val.h5) of synthetic blob images, as `prepare` writes it."""
    pytest.importorskip("h5py", reason="the train extra (h5py) is not installed")
    from streamcount.training.datasets.base import Sample
    from streamcount.training.density import DensityConfig, density_map
    from streamcount.training.store import SplitWriter

    out = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(0)
    cfg = DensityConfig(kernel="fixed", sigma=2.0)
    for split, n_img in (("train", 24), ("val", 8)):
        attrs = {"source": "synthetic", "split": split, "scale": 1.0, "kernel": "fixed"}
        with SplitWriter(out / f"{split}.h5", attrs) as w:
            for i in range(n_img):
                img, pts = blob_image(rng, 64, 64, int(rng.integers(5, 40)))
                s = Sample(name=f"{split}{i}", image=img, points=pts)
                w.add(s, density_map(pts, (64, 64), cfg))
    return out


# The variants of make_tiny_model the tests use, carried as files in tests/fixtures/tiny/ so that a
# runtime-only install (no `onnx` package) runs the runtime tests. test_tiny_fixtures_current
# regenerates each with `onnx` and asserts the carried file is byte-identical.
TINY_FIXTURES = REPO / "tests" / "fixtures" / "tiny"
TINY_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "bare": {"meta": False},
    "half": {"input_scale": 0.5},
    "nan": {"weight": float("nan")},
    "neg": {"weight": -1e-3},
    "one": {"weight": 1.0},
}


def _tiny_key(weight: float = 1e-3, in_channels: int = 3, meta: bool = True,
              input_scale: float = 1.0, name: str = "tiny") -> tuple[str, ...]:
    """The arguments of :func:`make_tiny_model` as a hashable key (repr, so that NaN == NaN)."""
    return tuple(repr(v) for v in (float(weight), in_channels, meta, float(input_scale), name))


def build_tiny_model(weight: float = 1e-3, in_channels: int = 3, meta: bool = True,
                     input_scale: float = 1.0, name: str = "tiny") -> bytes:
    """The serialised tiny model of :func:`make_tiny_model`, built with the ``onnx`` package."""
    from onnx import TensorProto, helper, numpy_helper

    from streamcount.metadata import ModelMetadata

    w = np.full((1, in_channels, 1, 1), weight / in_channels, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["density"], kernel_shape=[1, 1])],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", in_channels, "h", "w"])],
        [helper.make_tensor_value_info("density", TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta:
        md = ModelMetadata(
            architecture="tiny-conv", in_channels=in_channels,
            color_order="RGB" if in_channels == 3 else "GRAY",
            mean=[0.0] * in_channels, std=[1.0] * in_channels, density_scale=1.0,
            input_scale=input_scale, name=name,
        )  # fmt: skip
        for k, v in md.to_props().items():
            model.metadata_props.add(key=k, value=v)
    return model.SerializeToString()


def make_tiny_model(path: Path, weight: float = 1e-3, in_channels: int = 3, meta: bool = True,
                    input_scale: float = 1.0, name: str = "tiny") -> Path:
    """Write a tiny real ONNX density model: density = weight * mean over channels of the input.

    With the metadata's identity normalization (mean 0, std 1 on pixels / 255) the count of a
    frame is ``weight * sum(grey / 255)``, so tests can predict it exactly.

    Built with ``onnx`` when it is installed; otherwise copied from the carried variants in
    tests/fixtures/tiny/ (see ``TINY_VARIANTS``), and a variant not carried skips the test.
    """
    args = {"weight": weight, "in_channels": in_channels, "meta": meta,
            "input_scale": input_scale, "name": name}
    try:
        import onnx  # noqa: F401
    except ImportError:
        key = _tiny_key(**args)
        for variant, kwargs in TINY_VARIANTS.items():
            if _tiny_key(**kwargs) == key:
                path.write_bytes((TINY_FIXTURES / f"{variant}.onnx").read_bytes())
                return path
        pytest.skip(f"`onnx` is not installed and no carried tiny model matches {args}")
    path.write_bytes(build_tiny_model(**args))
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A tiny ONNX density model with streamcount metadata (see :func:`make_tiny_model`)."""
    return make_tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_checkpoint(blob_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (barely trained) U-Net-4 checkpoint from `Trainer` on the blob dataset."""
    pytest.importorskip("torch")
    from streamcount.training.config import TrainConfig
    from streamcount.training.trainer import Trainer

    out = tmp_path_factory.mktemp("tiny_ckpt")
    cfg = TrainConfig(data=str(blob_dataset), out=str(out), filters=4, epochs=1,
                      samples_per_epoch=16, patch=32, name="blobs", threads=2)
    Trainer(cfg, progress=False).fit()
    return out / "best.pt"


@pytest.fixture(scope="session")
def exported_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_checkpoint`` exported to ONNX (fp32, verified) once per session."""
    from streamcount.exports.onnx import export_checkpoint

    out = tmp_path_factory.mktemp("onnx") / "blobs.onnx"
    export_checkpoint(tiny_checkpoint, out, do_verify=True)
    return out
