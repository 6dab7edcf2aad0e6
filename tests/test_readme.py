"""The README starts with the two set-up commands and CI runs the second one verbatim."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, re.S)


def test_readme_opens_with_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_blocks = _commands()[:2]
    assert len(first_blocks) == 2
    run_cmd, test_cmd = first_blocks
    assert "pip install" in run_cmd and "streamcount run" in run_cmd
    assert "pip install" in test_cmd and ".[dev]" in test_cmd and "pytest" in test_cmd
    # Nothing but a title and a sentence before them.
    assert text.index(run_cmd) < 600


def test_ci_runs_the_readme_test_command() -> None:
    test_cmd = _commands()[1].strip()
    assert test_cmd in (REPO / ".ci" / "run").read_text()
