"""Packaging: training/ and exports/ install as streamcount.training and streamcount.exports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO


def _packages() -> tuple[list[str], dict[str, str]]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return cfg["packages"], cfg["package-dir"]


def test_every_package_folder_is_installed_under_streamcount() -> None:
    packages, dirs = _packages()
    folders = {"streamcount": "streamcount", **{v: k for k, v in dirs.items()}}
    found = set()
    for top, name in folders.items():
        for init in sorted((REPO / top).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / top).parts
            found.add(".".join((name, *rel)))
    assert found == set(packages)
    assert all(p == "streamcount" or p.startswith("streamcount.") for p in packages)


@pytest.mark.parametrize("shadow", ["training", "exports"])
def test_a_users_own_package_does_not_shadow_ours(tmp_path: Path, shadow: str) -> None:
    pkg = tmp_path / shadow
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('the user project, not streamcount')\n")
    out = subprocess.run([sys.executable, "-m", "streamcount", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in ("prepare", "train", "evaluate", "calibrate", "export"):
        assert command in out.stdout


def test_gpu_scripts_run_from_a_checkout_pip_never_installed() -> None:
    """The GPU machine has the working tree but no install: ``training/gpu/checkout.py``."""
    code = (
        "import sys\n"
        # forget the editable install's finder: as on a machine where pip never ran
        "sys.meta_path[:] = [f for f in sys.meta_path if 'ditable' not in repr(f)]\n"
        "sys.path_hooks[:] = [h for h in sys.path_hooks if 'ditable' not in repr(h)]\n"
        "sys.path_importer_cache.clear()\n"
        "try:\n"
        "    import streamcount.training\n"
        "    print('importable before mount')\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        f"sys.path.insert(0, {str(REPO / 'training' / 'gpu')!r})\n"
        "from checkout import mount\n"
        f"mount(__import__('pathlib').Path({str(REPO)!r}))\n"
        "import streamcount.training.gpu.run as run, streamcount.exports.onnx as onnx\n"
        "print(run.__file__, onnx.__file__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "examples",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "importable before mount" not in out.stdout
    run_file, onnx_file = out.stdout.split()
    assert Path(run_file) == REPO / "training" / "gpu" / "run.py"
    assert Path(onnx_file) == REPO / "exports" / "onnx.py"


def test_the_recipes_ship_with_the_package() -> None:
    """`streamcount train --recipe finetune` works from a pip install, not only a checkout."""
    import fnmatch

    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["streamcount.training"]
    recipes = sorted((REPO / "training" / "recipes").glob("*.toml"))
    assert recipes
    for path in recipes:
        rel = path.relative_to(REPO / "training").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


@pytest.mark.parametrize(("spec", "found"), [("finetune", True), ("crowd", True),
                                             ("no-such-recipe", False)])
def test_a_recipe_by_name(spec: str, found: bool) -> None:
    from streamcount.errors import InputError
    from streamcount.training.train_cli import resolve_recipe

    if found:
        assert resolve_recipe(spec).read_text().strip()
    else:
        with pytest.raises(InputError, match="finetune"):
            resolve_recipe(spec)
