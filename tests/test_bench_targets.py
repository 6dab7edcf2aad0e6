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
