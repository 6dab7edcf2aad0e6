"""Bundled models: ONNX files shipped as package data, each with a model card (``NAME.md``).

Example:
    >>> from streamcount.models import bundled_models
    >>> sorted(bundled_models())  # doctest: +SKIP
    ['cells', 'crowd', 'mall']
"""

from __future__ import annotations

from pathlib import Path

from streamcount import defaults
from streamcount.errors import InputError, ModelError

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = defaults.MODEL  # the name other modules import


def bundled_models() -> dict[str, Path]:
    """Name -> ONNX path of every bundled model."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.onnx"))}


def model_help() -> str:
    """The ``--model`` help text, naming every bundled model."""
    return f"bundled name ({', '.join(bundled_models())}; default {DEFAULT_MODEL}) or .onnx"


def int8_variant(model: str | Path) -> Path | None:
    """The int8 variant beside a model, if any: ``int8/NAME.onnx`` in the model's folder.

    The bundled models ship theirs there (``models/int8/crowd.onnx``), and
    ``streamcount export CKPT --out DIR/int8/NAME.onnx --int8`` puts a user's model's there.
    """
    try:
        path = resolve_model(model)
    except (InputError, ModelError):
        return None
    variant = path.parent / "int8" / path.name
    return variant if variant.is_file() else None


def model_card(name: str) -> str:
    """The bundled model's card (markdown), or an empty string."""
    card = MODELS_DIR / f"{name}.md"
    return card.read_text() if card.is_file() else ""


def resolve_model(model: str | Path) -> Path:
    """A bundled model name or a path to an ``.onnx`` file -> an existing path.

    Raises:
        ModelError: The name is neither bundled nor a file, or the path is a training
            checkpoint (export it first).
        InputError: A path to a model file (``.onnx`` or with a folder) that does not exist.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.suffix.lower() in (".pt", ".pth", ".ckpt"):
        raise ModelError(f"{path} is a training checkpoint, not an ONNX model: export it first "
                         f"(streamcount export {path} --out {path.with_suffix('.onnx')})")
    if path.suffix.lower() == ".onnx" or path.parent != Path("."):
        if not path.is_file():
            raise InputError(f"model file not found: {path}")
        return path
    models = bundled_models()
    if text in models:
        return models[text]
    if path.is_file():
        return path
    names = ", ".join(models) or "none installed"
    raise ModelError(f"unknown model '{text}': use a bundled name ({names}) or a path to .onnx")
