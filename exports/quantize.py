"""fp16 and int8 variants of an exported fp32 model.

int8 is static QDQ quantization with ``onnxruntime.quantization``: unsigned activations and
signed weights (U8S8), per-channel weights, calibrated on real images run through the same
pre-processing as the runtime. Its count drift against fp32 is measured on those images and the
model is refused when the drift is above a tolerance.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamcount.errors import InputError, ModelError
from streamcount.exports.atomic import save_model_atomic
from streamcount.exports.onnx import INPUT_NAME, add_metadata
from streamcount.images import IMAGE_SUFFIXES
from streamcount.metadata import ModelMetadata

logger = logging.getLogger(__name__)



@dataclass
class DriftReport:
    """Count drift of a quantized model against fp32 on real images."""

    n_images: int
    mean_abs: float
    max_abs: float
    mean_rel: float
    max_rel: float


def _meta_of(proto: Any, source: str) -> ModelMetadata:
    return ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props}, source)


def _read_meta(path: Path) -> ModelMetadata:
    import onnx

    return _meta_of(onnx.load(str(path)), str(path))


def convert_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and activations (for GPUs); inputs and outputs stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load(str(src))
    meta = _meta_of(proto, str(src))
    _split_shared_initializers(proto)
    half = convert_float_to_float16(proto, keep_io_types=True)
    meta.precision = "fp16"
    add_metadata(half, meta)
    save_model_atomic(half, dst)


def _split_shared_initializers(proto: Any) -> None:
    """Give every use of a shared initializer its own copy.

    The dynamo exporter shares constants (Resize scales, Pad amounts) between nodes; the fp16
    converter then inserts one identically named Cast per use, which ONNX Runtime rejects.
    """
    import onnx

    inits = {t.name: t for t in proto.graph.initializer}
    uses: dict[str, int] = {}
    for node in proto.graph.node:
        for k, name in enumerate(node.input):
            if name not in inits:
                continue
            uses[name] = uses.get(name, 0) + 1
            if uses[name] > 1:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__use{uses[name]}"
                proto.graph.initializer.append(copy)
                node.input[k] = copy.name


def calibration_images(source: Path | str | list, limit: int = 64) -> list[Path]:
    """Images in folders (recursively) or matching glob patterns, evenly thinned to ``limit``.

    Several sources (a list) each give an equal share of ``limit``: calibrate on varied scenes,
    not 64 frames of one clip.

    Example:
        >>> calibration_images("../shared/data/vgg-cells/*cell.png")  # doctest: +SKIP
    """
    import glob

    if isinstance(source, list | tuple):
        if not source:
            raise InputError("no calibration images given")
        share = max(1, limit // len(source))
        return [f for s in source for f in calibration_images(s, share)]
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(text, recursive=True))
        files = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise InputError(
                f"calibration folder not found: {folder}; pass a folder or a glob of real images"
            )
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise InputError(f"no calibration images in {text} (looked for {kinds})")
    if len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in idx]
    return files


def _inputs(files: list[Path], meta: ModelMetadata) -> Iterator[np.ndarray]:
    """Model inputs (1 x C x H x W, padded) for image files, as the runtime makes them."""
    import cv2

    from streamcount.preprocess import Preprocessor

    pre = Preprocessor(meta)
    m = max(1, meta.size_multiple)
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None:
            logger.warning("skipping unreadable calibration image %s", f)
            continue
        x = pre(img)
        c, h, w = x.shape
        buf = np.zeros((1, c, -(-h // m) * m, -(-w // m) * m), np.float32)
        buf[0, :, :h, :w] = x
        yield buf


class _Reader:
    """``CalibrationDataReader`` over pre-processed images, advancing ``tick`` for each."""

    def __init__(self, arrays: list[np.ndarray], tick: Callable[[], None] | None = None) -> None:
        self._it = iter(arrays)
        self._tick = tick

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        if x is not None and self._tick is not None:
            self._tick()
        return None if x is None else {INPUT_NAME: x}


def _ticker(progress: Any, description: str, total: int) -> Callable[[], None] | None:
    """A function that advances a new task of ``progress`` by one (None without progress)."""
    if progress is None:
        return None
    task = progress.add_task(description, total=total)
    return lambda: progress.advance(task)


def count_drift(
    fp32: Path, quant: Path, arrays: list[np.ndarray], density_scale: float = 1.0,
    tick: Callable[[], None] | None = None,
) -> DriftReport:
    """Counts of both models on the same inputs (absolute drift in objects).

    ``tick`` (optional) is called after each input, for a progress bar.
    """
    import onnxruntime as ort

    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(quant), providers=["CPUExecutionProvider"])
    abs_d, rel_d = [], []
    for x in arrays:
        ca = float(a.run(None, {INPUT_NAME: x})[0].sum()) / density_scale
        cb = float(b.run(None, {INPUT_NAME: x})[0].sum()) / density_scale
        abs_d.append(abs(ca - cb))
        rel_d.append(abs(ca - cb) / max(abs(ca), 1e-6))
        if tick is not None:
            tick()
    return DriftReport(
        n_images=len(arrays), mean_abs=float(np.mean(abs_d)), max_abs=float(np.max(abs_d)),
        mean_rel=float(np.mean(rel_d)), max_rel=float(np.max(rel_d)),
    )  # fmt: skip


def edge_convs(model: Path, first: int = 1, last: int = 2) -> list[str]:
    """Names of the first ``first`` and last ``last`` Conv nodes (graph order is topological).

    The stem sees raw pixels and the density head writes the counts: the two places where an
    int8 rounding error is not averaged away, so they stay in fp32 by default.
    """
    import onnx

    convs = [n.name for n in onnx.load(str(model)).graph.node if n.op_type == "Conv"]
    picked = convs[:first] + (convs[-last:] if last else [])
    return list(dict.fromkeys(picked))


def quantize_int8(
    src: Path, dst: Path, calibration: Path | str | list, max_drift: float = 0.05,
    limit: int = 64, check: Path | str | list | None = None, fp32_edges: tuple[int, int] = (1, 2),
    max_drift_max: float | None = None, progress: Any = None,
) -> DriftReport:
    """Static QDQ int8 (U8S8, per-channel weights) calibrated on real images.

    Args:
        src: The fp32 model (with metadata).
        dst: Where the int8 model goes (only when its drift is acceptable).
        calibration: Folder(s) or glob(s) of real images like those the model will see (varied:
            several scenes, lighting and crowd sizes); a list gives each an equal share.
        max_drift: Largest accepted mean relative count drift against fp32.
        limit: Calibration images used.
        check: Other images to measure the drift on (default: the calibration images).
        fp32_edges: How many of the first and last convolutions stay fp32 (the stem and
            the density head; ``(0, 0)`` quantizes every convolution).
        max_drift_max: Largest accepted relative drift on any one image (None: not checked).
        progress: Optional ``rich.progress.Progress`` to report the calibration and the drift
            check into (one task each).

    Raises:
        ModelError: the drift is above ``max_drift`` (mean) or ``max_drift_max`` (any image).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = _read_meta(src)
    arrays = list(_inputs(calibration_images(calibration, limit), meta))
    if not arrays:
        raise InputError(f"no readable calibration images in {calibration}")
    with tempfile.TemporaryDirectory() as d:
        pre = Path(d) / "pre.onnx"
        out = Path(d) / "int8.onnx"
        # Dynamic H and W: the symbolic shape pass cannot handle them.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out), _Reader(arrays, _ticker(progress, "calibrating", len(arrays))),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=edge_convs(pre, *fp32_edges) if any(fp32_edges) else [],
        )  # fmt: skip
        checked = arrays
        if check is not None:
            checked = list(_inputs(calibration_images(check, limit), meta))
        drift = count_drift(src, out, checked, meta.density_scale,
                            _ticker(progress, "checking drift", len(checked)))
        where = "calibration" if check is None else "check"
        if drift.mean_rel > max_drift or (max_drift_max is not None
                                          and drift.max_rel > max_drift_max):
            limit_text = f"--max-drift {max_drift:.1%}" + (
                f" / --max-drift-max {max_drift_max:.1%}" if max_drift_max is not None else "")
            raise ModelError(
                f"int8 count drift {drift.mean_rel:.1%} (mean over {drift.n_images} {where} "
                f"images, max {drift.max_rel:.1%}) is above {limit_text}; "
                "keep the fp32 model or calibrate on more representative images"
            )
        import onnx

        proto = onnx.load(str(out))
        meta.precision = "int8"
        meta.metrics = {**meta.metrics, "int8_count_drift_rel": drift.mean_rel}
        add_metadata(proto, meta)
        save_model_atomic(proto, dst)
    return drift

