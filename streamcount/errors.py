"""User-facing errors and the exit codes the CLI maps them to.

Every failure a user can cause raises a subclass of :class:`StreamcountError` carrying one line
that says what went wrong, where, and what to do. The CLI prints that line and exits with the
class's ``exit_code``; ``--debug`` shows the traceback instead.

Exit codes:

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     internal error (a bug: please report it with ``--debug`` output)
2     bad input: a missing, unreadable or malformed file, flag or value
3     a needed optional dependency (extra) is not installed
4     bad model: not ONNX, unexpected inputs, wrong checkpoint
5     the requested device (CUDA, TensorRT) is not usable
6     a video source could not be opened or read
7     an output could not be written (permissions, full disk)
130   interrupted (Ctrl-C / SIGTERM); outputs were flushed and closed
====  =====================================================================
"""

from __future__ import annotations


class StreamcountError(Exception):
    """Base class of every error a user can cause; its message is one line for the user."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InputError(StreamcountError):
    """A file, folder, flag or value given by the user is missing or malformed."""

    exit_code = 2


class DependencyError(StreamcountError):
    """An optional extra is needed but not installed."""

    exit_code = 3


class ModelError(StreamcountError):
    """A model or checkpoint cannot be used."""

    exit_code = 4


class DeviceError(StreamcountError):
    """The requested execution device is not usable on this machine."""

    exit_code = 5


class SourceError(StreamcountError):
    """A video source cannot be opened or read."""

    exit_code = 6


class OutputError(StreamcountError):
    """An output file or folder cannot be written."""

    exit_code = 7


EXIT_INTERRUPTED = 130


def require(module: str, extra: str) -> object:
    """Import an optional module or raise :class:`DependencyError` naming the extra.

    Args:
        module: Module name to import, e.g. ``"torch"``.
        extra: The streamcount extra that provides it, e.g. ``"train"``.

    Returns:
        The imported module.

    Example:
        >>> np = require("numpy", "base")
    """
    import importlib

    from streamcount.interrupts import held_interrupt

    try:
        # A Ctrl-C during torch's C++ start-up would abort the process: hold it until done.
        with held_interrupt():
            return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{module} is not installed: this command needs the '{extra}' extra; "
            f"install it with: pip install 'streamcount[{extra}]'"
        ) from exc
