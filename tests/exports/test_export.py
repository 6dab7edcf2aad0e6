"""checkpoint -> ONNX -> verify -> count, fp16 and int8 variants."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamcount.cli import main
from streamcount.engine import Counter
from streamcount.errors import ModelError
from tests.conftest import blob_image


def _images(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        img, _ = blob_image(rng, 72, 88, 15)
        cv2.imwrite(str(folder / f"{i}.png"), img[..., ::-1])
    return folder


def test_metadata_is_complete(exported_model: Path) -> None:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported_model)).metadata_props}
    for key in ("architecture", "in_channels", "color_order", "mean", "std", "density_scale",
                "size_multiple", "input_scale", "training_data", "metrics", "version", "name"):
        assert f"streamcount.{key}" in props, key
    assert props["streamcount.architecture"] == "unet-4"
    assert json.loads(props["streamcount.density_scale"]) == 100.0


@pytest.mark.parametrize("hw", [(64, 64), (61, 93), (240, 320)])
def test_onnx_runtime_counts_equal_torch(exported_model: Path, tiny_checkpoint: Path,
                                         hw: tuple[int, int]) -> None:
    import torch

    from streamcount.training.checkpoint import model_from_checkpoint
    from streamcount.training.data import normalize_image

    model, cfg = model_from_checkpoint(tiny_checkpoint)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(normalize_image(rgb, np.array(cfg["mean"]), np.array(cfg["std"])))
        # the engine's count is the integral of the density, never below 0
        ref = max(0.0, float(model(x.float()).sum()) / cfg["density_scale"])
    got = Counter(exported_model, device="cpu").count(rgb[..., ::-1].copy()).count
    assert got == pytest.approx(ref, rel=1e-4, abs=1e-6)


def test_export_cli_verify_and_count(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--verify", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["verify_max_rel_diff"] < 1e-4
    imgs = _images(tmp_path / "imgs")
    assert main(["count", str(imgs), "--model", str(out), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 4 and all(isinstance(r["count"], float) for r in lines)
    assert {Path(r["path"]).name for r in lines} == {"0.png", "1.png", "2.png", "3.png"}


def test_fp16_variant_counts_close(exported_model: Path, tmp_path: Path) -> None:
    from streamcount.exports.quantize import convert_fp16

    out = tmp_path / "half.onnx"
    convert_fp16(exported_model, out)
    half = Counter(out, device="cpu")
    assert half.metadata.precision == "fp16"
    img = cv2.imread(str(_images(tmp_path / "i", 1) / "0.png"))
    ref = Counter(exported_model, device="cpu").count(img).count
    assert half.count(img).count == pytest.approx(ref, rel=2e-2, abs=0.05)
    imgs = [img, np.ascontiguousarray(img[:, ::-1]), img // 2]
    many = half.count_batch(imgs)  # one batch, its frames prepared on the host threads
    assert [r.count for r in many] == pytest.approx([half.count(x).count for x in imgs],
                                                    rel=1e-6)
    # a model whose input itself is float16: the engine casts each frame on the host threads
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from streamcount.exports.quantize import _split_shared_initializers

    proto = onnx.load(str(exported_model))
    _split_shared_initializers(proto)
    io16 = convert_float_to_float16(proto, keep_io_types=False)
    onnx.save(io16, str(tmp_path / "io16.onnx"))
    c16 = Counter(tmp_path / "io16.onnx", device="cpu", host_threads=3)
    assert c16.input_dtype == np.float16
    got = [r.count for r in c16.count_batch(imgs)]
    assert got == pytest.approx([c16.count(x).count for x in imgs], rel=1e-6)
    assert got == pytest.approx([r.count for r in many], rel=2e-2, abs=0.05)


def test_int8_variant_and_drift_refusal(exported_model: Path, tmp_path: Path) -> None:
    from streamcount.exports.quantize import quantize_int8

    calib = _images(tmp_path / "calib", 4)
    out = tmp_path / "q.onnx"
    drift = quantize_int8(exported_model, out, calib, max_drift=1.0)
    assert drift.n_images == 4 and drift.mean_rel >= 0
    q = Counter(out, device="cpu")
    assert q.metadata.precision == "int8"
    assert any(n.op_type == "QuantizeLinear" for n in __import__("onnx").load(str(out)).graph.node)
    with pytest.raises(ModelError, match="drift"):
        quantize_int8(exported_model, tmp_path / "r.onnx", calib, max_drift=-1.0)
    assert not (tmp_path / "r.onnx").exists()


@pytest.mark.parametrize("n_check", [0, 3])
def test_int8_reports_progress(exported_model: Path, tmp_path: Path, n_check: int) -> None:
    from rich.progress import Progress

    from streamcount.exports.quantize import quantize_int8

    calib = _images(tmp_path / "calib", 4)
    check = _images(tmp_path / "check", n_check) if n_check else None
    with Progress(disable=True) as progress:
        drift = quantize_int8(exported_model, tmp_path / "q.onnx", calib, max_drift=1.0,
                              check=check, progress=progress)
    done = {t.description: (t.completed, t.total) for t in progress.tasks}
    assert done == {"calibrating": (4, 4), "checking drift": (n_check or 4, n_check or 4)}
    assert drift.n_images == (n_check or 4)


@pytest.mark.parametrize("as_json", [False, True])
def test_export_cli_int8(tiny_checkpoint: Path, tmp_path: Path, capsys, as_json: bool) -> None:
    out = tmp_path / "q.onnx"
    argv = ["export", str(tiny_checkpoint), "--out", str(out), "--int8", "--calibration",
            str(_images(tmp_path / "calib", 3)), "--max-drift", "1", "--max-drift-max", "1"]
    assert main(argv + (["--json"] if as_json else [])) == 0
    assert Counter(out, device="cpu").metadata.precision == "int8"
    printed = capsys.readouterr().out
    if as_json:
        report = json.loads(printed)
        assert report["precision"] == "int8" and report["int8_drift"]["n_images"] == 3
    else:
        assert "int8 vs fp32 on 3 images" in printed


def test_export_bad_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "x.onnx")]) == 4
    err = capsys.readouterr().err
    assert "not a torch checkpoint file" in err and "Traceback" not in err
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert main(["export", str(bad), "--out", str(tmp_path / "x.onnx"), "--int8"]) == 2
