"""The fleet on a real local Ray instance (loopback, 2 CPUs): exactly-once rows under faults."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamcount.fleet.config import FleetConfig
from streamcount.fleet.runner import FleetRunner
from tests.conftest import make_tiny_model
from tests.runtime.helpers import write_video

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")

LENGTHS = (40, 50, 60, 70)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _node_ip_address="127.0.0.1")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fleet")
    out = {f"cam{i}": write_video(d / f"cam{i}.mp4", n=n) for i, n in enumerate(LENGTHS)}
    out["model"] = make_tiny_model(d / "tiny.onnx")
    return out


def _config(clips: dict[str, Path], out: Path, **kw: object) -> FleetConfig:
    data = {"model": str(clips["model"]), "device": "cpu", "batch": 4, "output": str(out),
            "jsonl": True, "source_cpus": 0.1, "inference_cpus": 1,
            "sources": [{"source": str(clips[f"cam{i}"]), "name": f"cam{i}"}
                        for i in range(len(LENGTHS))]}
    data.update(kw)
    return FleetConfig.from_dict(data)


def _frames(path: Path) -> list[int]:
    if path.suffix == ".jsonl":
        return [json.loads(ln)["frame"] for ln in path.read_text().splitlines()]
    with path.open() as fh:
        return [int(r["frame"]) for r in csv.DictReader(fh)]


def _assert_exactly_once(out: Path) -> None:
    for i, n in enumerate(LENGTHS):
        for ext in ("csv", "jsonl"):
            assert _frames(out / f"cam{i}.{ext}") == list(range(n)), f"cam{i}.{ext}"


def test_four_sources_every_frame_exactly_once(local_ray: None, clips: dict[str, Path],
                                               tmp_path: Path) -> None:
    runner = FleetRunner(_config(clips, tmp_path))
    runner.run()
    _assert_exactly_once(tmp_path)
    s = runner.summary()
    assert s["frames"] == sum(LENGTHS)
    assert all(v["state"] == "ended" and v["restarts"] == 0 for v in s["sources"].values())
    assert s["nodes"][0]["provider"] == "cpu"
    assert sum(n["frames"] for n in s["nodes"]) == sum(LENGTHS)  # node rows add up


@pytest.mark.parametrize("victim", ["inference", "source"])
def test_killed_actor_loses_no_row(local_ray: None, clips: dict[str, Path], tmp_path: Path,
                                   victim: str) -> None:
    killed: list[int] = []

    def chaos(r: FleetRunner) -> None:
        done = sum(lane.stats.processed for lane in r.lanes.values())
        if not killed and done >= 30:
            actor = r.engines[0].actor if victim == "inference" else r.lanes["cam3"].actor
            ray.kill(actor, no_restart=False)  # Ray restarts it; the driver resumes
            killed.append(done)

    runner = FleetRunner(_config(clips, tmp_path))
    runner.run(chaos)
    assert killed and killed[0] < sum(LENGTHS)
    _assert_exactly_once(tmp_path)
    restarts = {n: v["restarts"] for n, v in runner.summary()["sources"].items()}
    assert restarts["cam3"] >= 1


def test_driver_restart_resumes_from_the_files(local_ray: None, clips: dict[str, Path],
                                               tmp_path: Path) -> None:
    first = FleetRunner(_config(clips, tmp_path))

    def stop_early(r: FleetRunner) -> None:
        if sum(lane.stats.processed for lane in r.lanes.values()) >= 25:
            r.stop()

    first.run(stop_early)
    partial = sum(len(_frames(tmp_path / f"cam{i}.csv")) for i in range(len(LENGTHS)))
    assert 25 <= partial < sum(LENGTHS)
    with (tmp_path / "cam0.jsonl").open("a") as fh:
        fh.write('{"source": "cam0", "fra')  # the driver died while writing a line
    second = FleetRunner(_config(clips, tmp_path), resume=True)
    second.run()
    _assert_exactly_once(tmp_path)
    assert second.summary()["frames"] < sum(LENGTHS)  # it did not start over


def test_a_bad_source_does_not_stop_the_others(local_ray: None, clips: dict[str, Path],
                                               tmp_path: Path) -> None:
    cfg = _config(clips, tmp_path)
    cfg.sources[1].source = str(tmp_path / "missing.mp4")
    runner = FleetRunner(cfg)
    runner.run()
    s = runner.summary()["sources"]
    assert "missing.mp4" in s["cam1"]["error"] and s["cam1"]["frames"] == 0
    assert [s[f"cam{i}"]["frames"] for i in (0, 2, 3)] == [LENGTHS[0], LENGTHS[2], LENGTHS[3]]


def test_zones_are_counted_next_to_the_engine(local_ray: None, clips: dict[str, Path],
                                              tmp_path: Path) -> None:
    zf = tmp_path / "zones.json"
    zf.write_text(json.dumps({"zones": [{"name": "left", "polygon": [[0, 0], [31, 0],
                                                                     [31, 47], [0, 47]]}]}))
    cfg = _config(clips, tmp_path / "out", jsonl=False)
    cfg.sources = cfg.sources[:1]
    cfg.sources[0].zones = zf
    FleetRunner(cfg).run()
    with (tmp_path / "out" / "cam0.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == LENGTHS[0]
    left = [float(r["zone:left"]) for r in rows]
    total = [float(r["count"]) for r in rows]
    assert all(0 < a < b for a, b in zip(left, total, strict=True))


def test_example_fleet_file(local_ray: None, tmp_path: Path) -> None:
    from tests.conftest import REPO

    cfg = FleetConfig.load(REPO / "examples" / "fleet.yaml")
    cfg.output = tmp_path
    for s in cfg.sources:
        s.max_frames = 12
    runner = FleetRunner(cfg)
    runner.run()
    rows = {s.name: _frames(tmp_path / f"{s.file_stem}.csv") for s in cfg.sources}
    assert rows == {"pets-zones": list(range(12)), "pets-every-2nd": list(range(0, 24, 2))}
    with (tmp_path / "pets-zones.csv").open() as fh:
        assert {"zone:path", "zone:lawn"} <= set(next(csv.reader(fh)))
