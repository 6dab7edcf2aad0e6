"""The carried tiny ONNX models (tests/fixtures/tiny/) are what make_tiny_model builds today."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_FIXTURES, TINY_VARIANTS, build_tiny_model, make_tiny_model


def test_every_carried_file_is_a_variant() -> None:
    """No stray or missing files: exactly one .onnx per entry of TINY_VARIANTS."""
    assert sorted(p.stem for p in TINY_FIXTURES.glob("*.onnx")) == sorted(TINY_VARIANTS)


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_tiny_fixtures_current(variant: str) -> None:
    """Regenerated with `onnx`, each variant is byte-identical to its carried file.

    On a mismatch (make_tiny_model or ModelMetadata changed), rewrite the files with
    ``(TINY_FIXTURES / f"{v}.onnx").write_bytes(build_tiny_model(**TINY_VARIANTS[v]))``.
    """
    pytest.importorskip("onnx", reason="regenerating the carried models needs `onnx` (train extra)")
    built = build_tiny_model(**TINY_VARIANTS[variant])
    assert (TINY_FIXTURES / f"{variant}.onnx").read_bytes() == built


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_tiny_variant_runs(variant: str, tmp_path: Path) -> None:
    """Each variant, as make_tiny_model writes it (built or carried), loads in ONNX Runtime."""
    import numpy as np
    import onnxruntime as ort

    path = make_tiny_model(tmp_path / "m.onnx", **TINY_VARIANTS[variant])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": np.ones((1, 3, 4, 4), np.float32)})[0]
    assert out.shape == (1, 1, 4, 4)
