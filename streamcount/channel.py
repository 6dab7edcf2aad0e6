"""The bounded queue between a source's capture thread and the engine (live or file mode)."""

from __future__ import annotations

import threading
from collections import deque


class Channel:
    """The bounded queue between a source's capture thread and the inference thread.

    Args:
        live: Newest frame wins (size 1, drops counted) instead of blocking when full.
        maxsize: Capacity in file mode.
        wake: Event set whenever a frame arrives or the channel closes.

    Example:
        >>> ch = Channel(live=True, maxsize=4, wake=threading.Event())
        >>> for i in range(3):
        ...     _ = ch.put(i, threading.Event())
        >>> ch.take(8), ch.dropped
        ([2], 2)
    """

    def __init__(self, live: bool, maxsize: int, wake: threading.Event) -> None:
        self.live = live
        self.maxsize = max(1, maxsize)
        self.wake = wake
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, item: object, stop: threading.Event) -> bool:
        """Add a frame; False when ``stop`` was set while waiting for room."""
        with self.cond:
            if self.live:
                self.dropped += len(self.items)
                self.items.clear()
            else:
                while len(self.items) >= self.maxsize:
                    if stop.is_set():
                        return False
                    self.cond.wait(0.05)
            self.items.append(item)
        self.wake.set()
        return True

    def take(self, n: int) -> list:
        """Up to ``n`` queued frames, oldest first (never blocks)."""
        with self.cond:
            out = [self.items.popleft() for _ in range(min(n, len(self.items)))]
            self.cond.notify_all()
        return out

    def take_dropped(self) -> int:
        """Frames dropped (newest-wins) since the last call."""
        with self.cond:
            n, self.dropped = self.dropped, 0
        return n

    def clear(self) -> int:
        """Drop everything queued; returns how many."""
        with self.cond:
            n = len(self.items)
            self.items.clear()
            self.cond.notify_all()
        return n

    def close(self) -> None:
        """No more frames will come."""
        self.closed = True
        self.wake.set()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def done(self) -> bool:
        """Closed and empty."""
        return self.closed and not self.items
