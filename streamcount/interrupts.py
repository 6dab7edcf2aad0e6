"""Ctrl-C around third-party code that does not take a KeyboardInterrupt well.

torch's C++ start-up calls back into Python; a KeyboardInterrupt raised there becomes a C++
exception nobody catches and the process aborts. torch's ONNX exporter catches whatever is
raised while tracing and reports it as a failed export. These helpers keep a Ctrl-C a Ctrl-C.
Both act only in the main thread (the only one Python delivers signals to) and are no-ops
elsewhere.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def held_interrupt() -> Iterator[None]:
    """Note a SIGINT inside the block and raise it as KeyboardInterrupt when the block ends.

    Example:
        >>> with held_interrupt():
        ...     import json  # a SIGINT here is raised after the import, not inside it
    """
    if not _in_main_thread():
        yield
        return
    held: list[int] = []
    old = signal.signal(signal.SIGINT, lambda sig, _frame: held.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if held:
        raise KeyboardInterrupt


@contextmanager
def interrupt_wins() -> Iterator[None]:
    """Raise KeyboardInterrupt at once on SIGINT, even if the code inside turns it into an error.

    If a SIGINT arrived and the block then fails with any exception (a library that caught the
    KeyboardInterrupt and raised its own error instead), KeyboardInterrupt is raised in its place.

    Example:
        >>> with interrupt_wins():
        ...     total = sum(range(10))
    """
    if not _in_main_thread():
        yield
        return
    seen: list[int] = []

    def on_sigint(sig: int, _frame: object) -> None:
        seen.append(sig)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except BaseException as exc:
        if seen and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, old)
