"""Checkpoints: weights plus a plain config dict, written atomically, loaded weights-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from streamcount.errors import InputError, ModelError, OutputError


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` through a temporary file and an atomic rename.

    A Ctrl-C or crash during the write leaves the previous checkpoint intact.
    """
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    except BaseException:  # Ctrl-C mid-write: the previous checkpoint stays, no stray .tmp
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        InputError: the file is missing.
        ModelError: the file is not a streamcount checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}; pass a .pt from `streamcount train`")
    import zipfile

    with path.open("rb") as fh:
        head = fh.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        raise ModelError(f"{path} is not a torch checkpoint file; use best.pt from `train`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        text = str(exc).strip()
        if "weights_only" in text or "Unsupported global" in text:
            why = "it holds objects other than tensors and plain values, refused for safety"
        else:
            why = text.splitlines()[0][:120] if text else type(exc).__name__
        raise ModelError(f"{path} is not a loadable checkpoint ({why})") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ModelError(f"{path} is not a streamcount checkpoint (no 'model'/'config' entries)")
    return state


def effective_density_scale(cfg: dict[str, Any]) -> float:
    """The divisor from network output to density: the training scale times the count gain.

    ``count_gain`` is 1 unless ``streamcount calibrate`` fitted it on the training split.
    """
    return float(cfg["density_scale"]) / float(cfg.get("count_gain", 1.0))


def model_from_checkpoint(path: Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the network stored in a checkpoint, in eval mode, on the CPU.

    Returns:
        ``(model, config)``.
    """
    from streamcount.training.models import build_model

    state = load_checkpoint(path)
    cfg = state["config"]
    arch = dict(cfg["model"])
    name = arch.pop("architecture")
    model = build_model(name, **arch)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ModelError(
            f"{path}: weights do not match architecture {name} {arch} "
            f"({str(exc).splitlines()[0][:120]})"
        ) from exc
    model.eval()
    return model, cfg


def slim_copy(src: Path, dst: Path) -> None:
    """A small copy of a checkpoint to ship beside a bundled model: the (EMA) weights in fp16
    and the config, without optimizer state (``--init NAME`` fine-tunes from it)."""

    state = load_checkpoint(src)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    save_checkpoint({"model": half, "config": state["config"], "epoch": state.get("epoch", -1)},
                    dst)


def resolve_init(name: str) -> Path:
    """``--init``: a checkpoint path, or a bundled model's name (its shipped ``NAME.pt``).

    Raises:
        InputError: neither exists.
    """
    path = Path(name)
    if path.is_file():
        return path
    from streamcount.models import MODELS_DIR, bundled_models

    shipped = MODELS_DIR / f"{name}.pt"
    if name in bundled_models() and shipped.is_file():
        return shipped
    have = sorted(p.stem for p in MODELS_DIR.glob("*.pt"))
    raise InputError(f"--init {name}: no such checkpoint, and no bundled model of that name "
                     f"ships weights (those that do: {', '.join(have) or 'none'})")
