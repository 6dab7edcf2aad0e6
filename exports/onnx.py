"""Checkpoint -> ONNX with metadata, verified against torch.

The exporter is torch's dynamo-based ``torch.onnx.export(dynamo=True)`` (needs onnxscript),
opset 18, with dynamic batch, height and width. The legacy TorchScript exporter is deprecated
in torch 2.x; the dynamo path is the one maintained.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamcount import __version__
from streamcount.errors import ModelError
from streamcount.exports.atomic import save_model_atomic
from streamcount.interrupts import held_interrupt, interrupt_wins
from streamcount.metadata import ModelMetadata
from streamcount.training.checkpoint import effective_density_scale

logger = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "density"
VERIFY_SIZES = ((1, 64, 64), (2, 120, 160), (1, 257, 191))


@dataclass
class ExportResult:
    """What an export wrote and how verification went."""

    path: Path
    metadata: ModelMetadata
    max_rel_diff: float | None = None


def metadata_from_config(
    cfg: dict[str, Any], name: str = "", precision: str = "fp32"
) -> ModelMetadata:
    """The ONNX metadata for a checkpoint's config dict."""
    from streamcount.training.models import label

    arch = cfg["model"]
    ds = cfg.get("dataset", {})
    root = Path(str(ds.get("root", ""))).name  # the dataset folder's name, not a local path
    data = f"{ds.get('source', '?')} ({root}) split={ds.get('split', 'train')}"
    return ModelMetadata(
        architecture=label(arch),
        in_channels=int(arch["in_channels"]),
        color_order=cfg.get("color_order", "RGB"),
        mean=[float(v) for v in cfg["mean"]],
        std=[float(v) for v in cfg["std"]],
        density_scale=effective_density_scale(cfg),
        size_multiple=int(cfg.get("size_multiple", 8)),
        input_scale=float(cfg.get("input_scale", 1.0)),
        precision=precision,
        training_data=data,
        metrics={k: float(v) for k, v in cfg.get("metrics", {}).items()},
        version=__version__,
        name=name or cfg.get("name", ""),
        model={k: (v if isinstance(v, (int, float, str, bool)) else str(v))
               for k, v in arch.items()},
    )


def add_metadata(model: Any, meta: ModelMetadata) -> None:
    """Replace the streamcount entries of ``model.metadata_props`` with ``meta``."""
    keep = [p for p in model.metadata_props if not p.key.startswith("streamcount.")]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for k, v in meta.to_props().items():
        model.metadata_props.add(key=k, value=v)


def _name_dims(model: Any) -> None:
    """Readable dynamic dims: [batch, C, height, width] in, [batch, 1, height, width] out."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        for i, label in ((0, "batch"), (2, "height"), (3, "width")):
            if len(dims) == 4 and not dims[i].HasField("dim_value"):
                dims[i].dim_param = label


def torch_to_onnx(model: Any, in_channels: int, path: Path) -> None:
    """Export a torch model to ``path`` with dynamic batch/height/width (no metadata)."""
    import torch

    with held_interrupt():  # imported lazily by the exporter; C++ start-up must not be cut
        import torch._dynamo
        import torch.export

        with contextlib.suppress(ImportError):  # missing: torch.onnx.export says what to install
            import onnxscript  # noqa: F401

    x = torch.zeros(1, in_channels, 64, 64)
    b, h, w = (torch.export.Dim(n, max=16384) for n in ("batch", "height", "width"))
    for noisy in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with warnings.catch_warnings(), interrupt_wins():  # the exporter turns Ctrl-C into an error
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=True, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: b, 2: h, 3: w}}, external_data=False, verbose=False,
        )  # fmt: skip


def verify(model: Any, onnx_path: Path, in_channels: int, tol: float = 1e-4) -> float:
    """Compare torch and ONNX Runtime counts on several input sizes.

    Returns:
        The largest relative count difference.

    Raises:
        ModelError: a difference above ``tol``.
    """
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for n, h, w in VERIFY_SIZES:
        x = rng.normal(0, 1, (n, in_channels, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run(None, {INPUT_NAME: x})[0]
        if got.shape != ref.shape:
            raise ModelError(f"verify: ONNX output {got.shape} != torch output {ref.shape}")
        for k in range(n):
            a, b = float(ref[k].sum()), float(got[k].sum())
            rel = abs(a - b) / max(abs(a), 1e-6)
            worst = max(worst, rel)
            if rel > tol:
                raise ModelError(
                    f"verify failed at {h}x{w}: torch count-sum {a:.6g} vs ONNX Runtime {b:.6g} "
                    f"(relative {rel:.2e} > {tol:.0e})"
                )
    return worst


def export_checkpoint(
    checkpoint: Path, out: Path, name: str = "", do_verify: bool = True
) -> ExportResult:
    """Export a training checkpoint to an fp32 ONNX model with metadata.

    Args:
        checkpoint: ``best.pt`` from ``streamcount train``.
        out: Destination ``.onnx``.
        name: Model name stored in the metadata (default: the checkpoint's).
        do_verify: Compare with torch on several sizes (1e-4 relative).
    """
    import onnx

    from streamcount.training.checkpoint import model_from_checkpoint

    model, cfg = model_from_checkpoint(checkpoint)
    meta = metadata_from_config(cfg, name=name)
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "raw.onnx"
        torch_to_onnx(model, meta.in_channels, raw)
        proto = onnx.load(str(raw))
        _name_dims(proto)
        add_metadata(proto, meta)
        proto.doc_string = f"streamcount {meta.name} density-counting model ({meta.architecture})"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(raw))
        diff = verify(model, raw, meta.in_channels) if do_verify else None
    save_model_atomic(proto, out)  # only a verified model reaches OUT
    return ExportResult(path=Path(out), metadata=meta, max_rel_diff=diff)
