"""The onnxruntime-gpu wheel's trip to the GPU machine: split here, stash there, join, checked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO


def _module():
    spec = importlib.util.spec_from_file_location("gpu_wheel", REPO / "benchmarks" / "gpu_wheel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("size,part", [(1000, 300), (900, 300), (10, 300)])
def test_split_stash_join_round_trip(tmp_path: Path, size: int, part: int) -> None:
    gw = _module()
    wheel = tmp_path / "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl"
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    wheel.write_bytes(data)
    parts = gw.split(wheel=wheel, out=tmp_path / "wheel", part_size=part)
    assert len(parts) == -(-size // part) and all(p.stat().st_size <= part for p in parts)
    stash = tmp_path / "stash"
    for p in parts:
        gw.stash(p, stash)
    assert gw.join(stash).read_bytes() == data
    (stash / parts[-1].name).write_bytes(b"x")  # a damaged part is refused
    with pytest.raises(SystemExit, match="sha256"):
        gw.join(stash)
    (stash / parts[0].name).unlink()
    with pytest.raises(SystemExit, match="missing"):
        gw.join(stash)


def test_parts_leave_room_for_the_working_tree() -> None:
    gw = _module()
    assert gw.PART <= 32 * 2**20 and gw.GPU_PYTHON == "3.12"
