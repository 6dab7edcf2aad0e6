"""Precision choice by CPU flags (simulated), int8 variants of bundled models, and the
non-negative density the engine guarantees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamcount.engine import Counter
from streamcount.errors import InputError, ModelError
from streamcount.precision import choose_precision, cpu_flags, int8_dot_flag
from tests.conftest import make_tiny_model

AVX2 = {"sse4_2", "avx", "avx2", "fma"}
AVX512_VNNI = AVX2 | {"avx512f", "avx512bw", "avx512_vnni"}
ALDER_LAKE = AVX2 | {"avx_vnni"}
SAPPHIRE = AVX512_VNNI | {"amx_tile", "amx_int8", "amx_bf16"}


@pytest.mark.parametrize("flags,variant,on_cpu,expected,why", [
    (AVX2, True, True, "fp32", "no VNNI"),
    (AVX512_VNNI, True, True, "int8", "avx512_vnni"),
    (ALDER_LAKE, True, True, "int8", "avx_vnni"),
    (SAPPHIRE, True, True, "int8", "amx_int8"),
    (AVX512_VNNI, False, True, "fp32", "no int8 variant"),
    (AVX512_VNNI, True, False, "fp32", "GPU"),
])  # fmt: skip
def test_auto_picks_int8_only_where_the_cpu_makes_it_faster(flags, variant, on_cpu, expected,
                                                            why) -> None:
    choice = choose_precision("auto", variant, on_cpu, flags)
    assert choice.precision == expected and why in choice.reason


@pytest.mark.parametrize("flags", [AVX2, AVX512_VNNI])
def test_explicit_choice_is_kept_whatever_the_cpu(flags) -> None:
    assert choose_precision("fp32", True, True, flags).precision == "fp32"
    assert choose_precision("int8", True, True, flags).precision == "int8"
    with pytest.raises(ModelError, match="no int8 variant"):
        choose_precision("int8", False, True, flags)
    with pytest.raises(InputError, match="unknown precision"):
        choose_precision("int4", True, True, flags)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor : 1\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_vnni"}
    assert int8_dot_flag(cpu_flags(info)) == "avx512_vnni"
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_counter_reports_its_precision_and_why(tiny_model: Path) -> None:
    c = Counter(tiny_model, device="cpu")
    assert c.precision == "fp32" and c.precision_reason == "no int8 variant of this model"
    with pytest.raises(ModelError, match="no int8 variant"):
        Counter(tiny_model, device="cpu", precision="int8")


def test_int8_variant_beside_a_model_file_is_used_when_asked(tiny_model: Path) -> None:
    variant = tiny_model.parent / "int8" / tiny_model.name
    variant.parent.mkdir()
    variant.write_bytes(tiny_model.read_bytes())  # (a copy: its metadata still says fp32)
    c = Counter(tiny_model, device="cpu", precision="int8")
    assert c.model_path == variant and c.precision_reason == "asked for (--precision int8)"
    assert Counter(tiny_model, device="cpu", precision="fp32").model_path == tiny_model
    # the variant itself has no variant of its own
    with pytest.raises(ModelError, match="no int8 variant"):
        Counter(variant, device="cpu", precision="int8")


def test_bundled_int8_variant_is_used_when_asked(monkeypatch) -> None:
    from streamcount.models import bundled_models, int8_variant

    shipped = [n for n in bundled_models() if int8_variant(n) is not None]
    if not shipped:
        pytest.skip("no bundled model ships an int8 variant")
    name = shipped[0]
    c = Counter(name, device="cpu", precision="int8")
    assert c.precision == "int8" and c.model_path == int8_variant(name)
    assert Counter(name, device="cpu", precision="fp32").precision == "fp32"


def test_negative_density_never_gives_negative_counts(tmp_path: Path) -> None:
    from streamcount.zones import ZoneSet

    model = make_tiny_model(tmp_path / "neg.onnx", weight=-1e-3)
    frame = np.full((48, 64, 3), 200, np.uint8)
    res = Counter(model, device="cpu").count(frame)
    assert res.count == 0.0  # the map may dip below 0 (old models); counts never do
    left = [[0, 0], [32, 0], [32, 48], [0, 48]]
    zones = ZoneSet.from_dict({"zones": [{"name": "left", "polygon": left}]})
    assert zones.counts(res.density)["left"] == 0.0
