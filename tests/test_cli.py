"""The one `streamcount` command: subcommands, lazy torch, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamcount.cli import COMMANDS, build_parser, main
from tests.conftest import REPO


def test_every_subcommand_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    for name in ("prepare", "train", "evaluate", "export", "count", "run", "bench", "info"):
        assert name in sub.choices


def test_python_dash_m_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "streamcount", "--version"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0 and out.stdout.startswith("streamcount ")


def test_runtime_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "import streamcount.engine, streamcount.pipeline, streamcount.sources, "
        "streamcount.dashboard, streamcount.overlay, streamcount.cli\n"
        "streamcount.cli.build_parser()\n"
        "bad = [m for m in ('torch', 'h5py', 'scipy', 'onnx', 'ray') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("argv", [["train", "--data", "x"], ["evaluate", "x.pt", "--data", "d"],
                                  ["export", "x.pt", "--out", "x.onnx"]])
def test_training_commands_name_the_extra_without_torch(argv: list[str]) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from streamcount.cli import main\n"
        f"raise SystemExit(main({argv!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 3
    assert "streamcount[train]" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv,code,needle",
    [
        (["count", "/nonexistent/img.png"], 2, "no such file"),
        (["count", "tests", "--model", "nosuchmodel"], 2, "unknown model 'nosuchmodel'"),
        (["prepare", "cells", "--root", "/nonexistent", "--out", "/tmp/x"], 2, "/nonexistent"),
        (["evaluate", "/nonexistent.pt", "--data", "/nonexistent"], 2, "no split"),
    ],
)
def test_bad_input_is_one_line(argv, code, needle, capsys) -> None:
    if argv[0] == "evaluate":  # without torch it says that first (test above)
        pytest.importorskip("torch")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == code or (rc != 0 and code == 2 and rc in (2, 4))
    assert needle in err and "Traceback" not in err
    assert len([ln for ln in err.strip().splitlines() if ln.startswith("error:")]) == 1


def test_fleet_without_ray_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("sources: [a.mp4]\n")
    code = ("import sys; sys.modules['ray'] = None\n"
            "from streamcount.cli import main\n"
            f"raise SystemExit(main(['fleet', {str(tmp_path / 'f.yaml')!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 3 and "streamcount[cluster]" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_fleet_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "f.yaml").write_text("sources: [{source: a.mp4, mode: turbo}]\n")
    assert main(["fleet", str(tmp_path / "f.yaml")]) == 2
    err = capsys.readouterr().err
    assert "mode must be live or file" in err and "Traceback" not in err


def test_debug_shows_the_traceback() -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "count", "/nonexistent/img.png"])


def test_full_stdout_is_one_line_exit_7(tiny_model, tmp_path) -> None:
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [sys.executable, "-m", "streamcount", "count", str(tmp_path), "--model",
             str(tiny_model), "--json"], stdout=full, stderr=subprocess.PIPE, text=True,
            timeout=60, cwd=REPO,
        )  # fmt: skip
    assert out.returncode == 7
    assert "No space left on device" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("argv", [["-v", "info", "--json"], ["info", "-v", "--json"],
                                  ["info", "--json", "--debug"]])
def test_global_flags_work_after_the_subcommand_too(argv: list[str], capsys) -> None:
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["streamcount"]


def test_info_never_cuts_a_model_name_at_80_columns() -> None:
    from streamcount.models import bundled_models

    r = subprocess.run([sys.executable, "-m", "streamcount", "info"], capture_output=True,
                       text=True, cwd=REPO, env={**__import__("os").environ, "COLUMNS": "80"},
                       timeout=120)
    assert r.returncode == 0
    for name in bundled_models():
        assert any(line.split("│")[1].strip() == name for line in r.stdout.splitlines()
                   if line.count("│") > 2), name
