"""Import ``streamcount.training`` and ``streamcount.exports`` from a checkout pip never installed.

Installed, ``training/`` and ``exports/`` are the subpackages ``streamcount.training`` and
``streamcount.exports`` (pyproject's ``package-dir``). On a machine that only has a copy of the
working tree and no network to install it (the lent GPU machine), the scripts of this folder
run as files (``python training/gpu/run.py``) and call :func:`mount` first, which maps the two
folders onto those names. It uses nothing but the standard library, so it can run before either
package is importable.

Example:
    >>> from pathlib import Path
    >>> mount(Path(__file__).resolve().parents[2])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def mount(root: Path) -> None:
    """Make ``streamcount``, ``streamcount.training`` and ``streamcount.exports`` importable.

    Args:
        root: The repository's root (the folder holding ``streamcount/`` and ``training/``).
    """
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import streamcount

    for name in ("training", "exports"):
        full = f"streamcount.{name}"
        try:
            importlib.import_module(full)  # installed (or mounted before): nothing to do
            continue
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
        spec = importlib.util.spec_from_file_location(
            full, root / name / "__init__.py", submodule_search_locations=[str(root / name)])
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"no {name}/ package under {root}", name=full)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        setattr(streamcount, name, module)
