"""benchmarks/bench_engine.py judges issue 18's targets on the machine it ran on, and says which
ones that machine cannot test."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("bench_engine",
                                                  REPO / "benchmarks" / "bench_engine.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(flags: list[str], e2e_fps: float, gflops: float) -> dict:
    return {"machine": {"simd": flags}, "plain_conv_16": {"gflops": 200.0},
            "latency": [{"case": "seed-style torch eager U-Net-64", "path": "torch", "fps": 1.0},
                        {"case": "engine crowd (fp32)", "path": "ort-cpu", "gflops": gflops,
                         "frame": "640x480"}],
            "e2e": [{"case": "e2e", "e2e_fps": e2e_fps, "video_frames": None}]}


@pytest.mark.parametrize(("flags", "fps", "gflops", "expected"), [
    (["avx2", "fma"], 45.0, 180.0, {"AVX2": "met", "VNNI": "not testable", "60x": "missed",
                                    "85%": "met"}),
    (["avx2", "fma"], 25.0, 160.0, {"AVX2": "missed", "VNNI": "not testable", "60x": "missed",
                                    "85%": "missed"}),
    (["avx2", "avx512f", "avx512_vnni"], 70.0, 171.0, {"AVX2": "not testable", "VNNI": "met",
                                                       "60x": "met", "85%": "met"}),
    (["avx2", "avx_vnni"], 50.0, 100.0, {"AVX2": "not testable", "VNNI": "missed",
                                         "60x": "missed", "85%": "missed"}),
])
def test_targets_verdicts(flags: list[str], fps: float, gflops: float,
                          expected: dict[str, str]) -> None:
    rows = _bench().targets(_result(flags, fps, gflops))
    found = {key: next(v for t, _, v in rows if key in t) for key in expected}
    assert {k: v.split(" (")[0].replace(" here", "") for k, v in found.items()} == expected


@pytest.mark.parametrize(("model", "fps", "expected"), [
    ("crowd", 25.0, [("the default model", ">= 30 fps on an AVX2", "missed"),
                     ("the default model", ">= 60 fps on a VNNI", "not testable here (this CPU "
                                                                  "has no VNNI or AMX)")]),
    ("crowd-accurate", 20.0, [("`crowd-accurate`", ">= 15 fps on an AVX2", "met")]),
    ("crowd-accurate", 12.0, [("`crowd-accurate`", ">= 15 fps on an AVX2", "missed")]),
    ("mall", 90.0, []),
])
def test_e2e_targets_are_the_timed_models_own(model: str, fps: float, expected: list) -> None:
    """A run of another model is judged by that model's target, never the default's."""
    result = {**_result(["avx2", "fma"], fps, 180.0), "e2e_model": model}
    rows = [(t, v) for t, _, v in _bench().targets(result) if t.startswith("`streamcount run`")]
    assert len(rows) == len(expected)
    for (target, verdict), (label, need, want) in zip(rows, expected, strict=True):
        assert label in target and need in target and verdict == want


def _cpuid_mask_lib(tmp_path):
    """benchmarks/cpuid_mask.c built here by the benchmark's own builder (skips where the CPU
    cannot fault CPUID or there is no C compiler)."""
    import shutil

    from streamcount.precision import cpu_flags

    if "cpuid_fault" not in cpu_flags():
        pytest.skip("this CPU or kernel has no CPUID faulting")
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler")
    return _bench().build_cpuid_mask(tmp_path)


_MASK_PROBE = """
import ctypes, json, numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
w = np.random.default_rng(0).standard_normal((16, 16, 3, 3)).astype(np.float32)
graph = helper.make_graph(
    [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 24, 32])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
x = np.random.default_rng(1).standard_normal((1, 16, 24, 32)).astype(np.float32)
trapped = getattr(ctypes.CDLL(None), "cpuid_mask_trapped", None)
print(json.dumps({"y": sess.run(None, {"x": x})[0].ravel()[::97].tolist(),
                  "avx512f": bool(np._core._multiarray_umath.__cpu_features__["AVX512F"]),
                  "avx2": bool(np._core._multiarray_umath.__cpu_features__["AVX2"]),
                  "trapped": None if trapped is None else int(trapped())}))
"""


def test_cpuid_mask_hides_avx512_and_onnx_runtime_still_counts(tmp_path) -> None:
    """Under the mask, numpy's own CPUID reading finds AVX2 but no AVX-512, the CPUID
    instructions were answered by the handler, and ONNX Runtime (on its AVX2 kernels) computes
    the same convolution as without the mask."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("onnx")
    lib = _cpuid_mask_lib(tmp_path)
    plain = json.loads(subprocess.run([sys.executable, "-c", _MASK_PROBE], check=True,
                                      capture_output=True, text=True).stdout)
    masked = json.loads(subprocess.run([sys.executable, "-c", _MASK_PROBE], check=True,
                                       capture_output=True, text=True,
                                       env={**os.environ, "LD_PRELOAD": str(lib)}).stdout)
    assert plain["trapped"] is None and masked["trapped"] > 0
    assert masked["avx2"] and not masked["avx512f"]
    assert masked["y"] == pytest.approx(plain["y"], rel=1e-4, abs=1e-4)


def test_mask_avx512_without_cpuid_faulting_is_one_line(monkeypatch, tmp_path) -> None:
    import streamcount.precision

    bench = _bench()
    monkeypatch.setattr(streamcount.precision, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(SystemExit) as stop:
        bench.rerun_masked(["--mask-avx512"], tmp_path)
    message = str(stop.value.code)
    assert "no CPUID faulting" in message and "\n" not in message
