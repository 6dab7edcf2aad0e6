"""Atomic writes of ONNX models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from streamcount.errors import OutputError


def save_model_atomic(model: Any, path: Path) -> None:
    """Save an ``onnx.ModelProto`` through a temporary file and a rename."""
    import onnx

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:  # Ctrl-C mid-write: no partial model, no stray .tmp
        tmp.unlink(missing_ok=True)
        raise
