"""Per (app key, endpoint) rate limit in a 1-second sliding window, plus call statistics.

Only accepted calls enter the window, so a client that keeps calling too fast still gets
through at the documented rate. ``max_per_second`` is the largest number of accepted calls seen
in any 1-second window: a test reads it to prove that a client never exceeded its own limit.

An accepted call then ends in one of a few ways; two are counted apart from ``calls``:
``committed`` (a create, update or delete whose change is in the database, even if its
connection is dropped afterwards) and ``disconnected`` (the client was gone before its body
was read, so nothing was done).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

Outcome = Literal["committed", "disconnected"]


class SlidingWindowLimiter:
    """At most ``limit`` accepted calls per (app key, path) in any window of ``window`` seconds."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._accepted: dict[str, deque[float]] = {}
        self._calls: dict[str, int] = {}
        self._max: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._outcomes: dict[Outcome, dict[str, int]] = {"committed": {}, "disconnected": {}}

    def admit(self, app_key: str, path: str) -> bool:
        """Count a call; ``False`` (and nothing counted as accepted) when it is over the limit."""
        key = f"{app_key} {path}"
        now = self._clock()
        with self._lock:
            window = self._accepted.setdefault(key, deque())
            while window and window[0] <= now - self._window:
                window.popleft()
            if len(window) >= self.limit:
                self._rejected[key] = self._rejected.get(key, 0) + 1
                return False
            window.append(now)
            self._calls[key] = self._calls.get(key, 0) + 1
            self._max[key] = max(self._max.get(key, 0), len(window))
            return True

    def record(self, app_key: str, path: str, outcome: Outcome) -> None:
        """Count how an accepted call ended (see the module docstring)."""
        key = f"{app_key} {path}"
        with self._lock:
            counts = self._outcomes[outcome]
            counts[key] = counts.get(key, 0) + 1

    def stats(self) -> dict[str, Any]:
        """``limit``, then ``calls``, ``max_per_second``, ``rate_limited``, ``committed`` and
        ``disconnected`` per ``"<app key> <path>"``."""
        with self._lock:
            return {
                "limit": self.limit,
                "calls": dict(self._calls),
                "max_per_second": dict(self._max),
                "rate_limited": dict(self._rejected),
                **{outcome: dict(counts) for outcome, counts in self._outcomes.items()},
            }

    def reset(self) -> None:
        """Forget every count and window."""
        with self._lock:
            self._accepted.clear()
            self._calls.clear()
            self._max.clear()
            self._rejected.clear()
            for counts in self._outcomes.values():
                counts.clear()
