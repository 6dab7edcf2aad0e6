"""The output table: one declaration gives `run` its flag and `fleet` its key and files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from streamcount.cli import main
from streamcount.errors import InputError
from streamcount.fleet.config import FleetConfig
from streamcount.frames import Result
from streamcount.sinks import Sink, TextFileSink, table
from tests.runtime.helpers import write_video


class FrameLines(TextFileSink):
    """A sink that is not in the package: one frame index per line."""

    kind = "frame list"

    def write(self, result: Result) -> None:
        assert self.fh is not None
        self.fh.write(f"{result.frame.index}\n")


def _last_line(path: Path) -> int:
    lines = path.read_text().split() if path.is_file() else []
    return int(lines[-1]) if lines else -1


def _build(path: Path, ctx: table.SinkContext) -> Sink:
    return FrameLines(path, ctx.resume)


@pytest.fixture
def with_frames_output(monkeypatch: pytest.MonkeyPatch) -> table.Output:
    """The table plus one new output, declared once."""
    new = table.Output("frames_out", "frame list", "frame indices, one per line", "FILE",
                       _build, ".frames", recover=_last_line)
    extended = {**table.outputs(), new.key: new}
    monkeypatch.setattr(table, "outputs", lambda: extended)
    return new


@pytest.mark.parametrize("key", sorted(table.outputs()))
def test_every_output_is_a_run_flag(key: str) -> None:
    p = argparse.ArgumentParser()
    table.add_flags(p.add_argument_group("outputs"))
    flag = table.outputs()[key].flag
    assert getattr(p.parse_args([flag, "x.out"]), key) == Path("x.out")


@pytest.mark.parametrize(("key", "offered"), [("csv", True), ("jsonl", True), ("video", False),
                                              ("plot", False), ("aggregate_out", False)])
def test_fleet_offers_the_outputs_that_can_resume(key: str, offered: bool) -> None:
    data = {"sources": ["a.mp4"], key: True}
    if offered:
        assert key in FleetConfig.from_dict(data).outputs
    else:
        with pytest.raises(InputError, match="not written by a fleet"):
            FleetConfig.from_dict(data)


@pytest.mark.parametrize(("keys", "expected"), [({}, ("csv",)), ({"jsonl": True}, ("csv", "jsonl")),
                                                ({"csv": False, "jsonl": True}, ("jsonl",))])
def test_fleet_switches(keys: dict[str, bool], expected: tuple[str, ...]) -> None:
    assert FleetConfig.from_dict({"sources": ["a.mp4"], **keys}).outputs == expected


@pytest.mark.parametrize("bad", [{"csv": False}, {"jsonl": "yes"}])
def test_fleet_refuses_no_output_or_a_non_boolean(bad: dict[str, object]) -> None:
    with pytest.raises(InputError, match=r"nothing would be written|true or false"):
        FleetConfig.from_dict({"sources": ["a.mp4"], **bad})


@pytest.mark.parametrize(("bad", "needle"), [
    ({"threads": -1}, "threads must be 0"), ({"threads": 5000}, "threads must be 0"),
    ({"batch": 0}, "batch must be >= 1"), ({"prefetch": 0}, "prefetch must be >= 1"),
    ({"num_cpus": 0}, "num_cpus must be from 1"), ({"metrics_port": 99999}, "metrics_port"),
    ({"threads": "x"}, r"threads = 'x' \(should be a whole number\)"),
    ({"num_cpus": 1.5}, r"num_cpus = 1.5 \(should be a whole number or left out\)"),
    ({"batch": None}, "batch = None"), ({"model": 3}, r"model = 3 \(should be text\)"),
    ({"sources": [{"source": "a.mp4", "stride": "2"}]}, "source 1: a setting of the wrong type"),
    ({"sources": [{"source": "a.mp4", "fps": float("nan")}]}, "source 1: fps must be above 0"),
    ({"sources": [{"source": "a.mp4", "max_frames": 0}]}, "source 1: max_frames must be >= 1"),
])
def test_fleet_refuses_impossible_numbers(bad: dict[str, object], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        FleetConfig.from_dict({"sources": ["a.mp4"], **bad})


def test_a_new_output_is_one_declaration(with_frames_output: table.Output, tmp_path: Path,
                                         tiny_model: Path) -> None:
    """Declared once in the table: `run` has its flag and writes it; a fleet file accepts it."""
    v = write_video(tmp_path / "v.mp4", n=12)
    out = tmp_path / "f.txt"
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet",
               "--frames-out", str(out)])
    assert rc == 0
    assert out.read_text().split() == [str(i) for i in range(12)]
    cfg = FleetConfig.from_dict({"sources": ["a.mp4"], "frames_out": True, "csv": False})
    assert cfg.outputs == ("frames_out",)
    sinks = table.build({"frames_out": tmp_path / "a.frames"}, table.SinkContext(resume=True))
    assert isinstance(sinks[0], FrameLines) and sinks[0].append


@pytest.mark.parametrize("key", [k for k, o in table.outputs().items() if not o.stdout])
def test_run_refuses_stdout_for_an_output_that_cannot_go_there(
        key: str, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    v = write_video(tmp_path / "v.mp4", n=2)
    flag = table.outputs()[key].flag
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", flag, "-"])
    assert rc != 0
    assert f"{flag} cannot write to standard output" in capsys.readouterr().err
