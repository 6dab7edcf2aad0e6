"""The code's own checks, run by the suite (and so by ``.ci/run``): the examples in docstrings,
ruff and the type checker."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

#: Packages whose docstring examples run; the training side needs the train extra.
PACKAGES = ("streamcount", "streamcount.training", "streamcount.exports")


def _modules() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        spec = importlib.util.find_spec(pkg_name)
        assert spec is not None and spec.submodule_search_locations is not None
        names.append(pkg_name)
        for m in pkgutil.walk_packages(spec.submodule_search_locations, pkg_name + "."):
            if not m.name.endswith("__main__"):  # running it would run the CLI
                names.append(m.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional extra (torch, ray, h5py) not installed
        pytest.skip(f"{name} needs {exc.name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def _tool(name: str) -> list[str]:
    if importlib.util.find_spec(name) is None and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (the dev extra has it)")
    return [sys.executable, "-m", name]


def test_ruff_is_clean() -> None:
    out = subprocess.run([*_tool("ruff"), "check", "--no-cache", "."], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]


@pytest.mark.slow
def test_types_check() -> None:
    """mypy over streamcount/, training/ and exports/ (settings in pyproject.toml)."""
    out = subprocess.run([*_tool("mypy"), "--no-incremental"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
