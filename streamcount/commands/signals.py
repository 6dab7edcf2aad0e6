"""SIGINT/SIGTERM handling shared by the long-running commands (``run``, ``fleet``)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def install_stop_signals(interrupted: threading.Event, first: Callable[[], None],
                         second: Callable[[], None], what: str) -> Callable[[], None]:
    """First SIGINT/SIGTERM: set ``interrupted``, call ``first``; a second one calls ``second``.

    Args:
        interrupted: Set by the first signal (the command then exits with code 130).
        first: Stop gracefully (finish what is queued, close outputs).
        second: Stop now.
        what: What the first stop does, for the log line.

    Returns:
        A function that restores the previous handlers. Outside the main thread nothing is
        installed (Python only delivers signals there).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: object) -> None:
        if interrupted.is_set():
            logger.warning("second interrupt: stopping now")
            second()
        else:
            logger.warning("%s: %s", signal.Signals(signum).name, what)
            interrupted.set()
            first()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
