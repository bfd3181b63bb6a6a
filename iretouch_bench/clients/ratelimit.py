"""A request-start rate limiter shared by all worker threads of one client."""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    """At most ``per_minute`` request starts per minute, spaced evenly (``None``: no limit).

    Each :meth:`acquire` books the next free start slot (``60 / per_minute`` seconds after the
    previous one) and sleeps until it; the booking happens under a lock, the sleep outside it, so
    N threads waiting get N distinct slots.
    """

    def __init__(self, per_minute: float | None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if per_minute is not None and not per_minute > 0:
            raise ValueError(f"requests per minute must be > 0, got {per_minute}")
        self.per_minute = per_minute
        self.interval = 0.0 if per_minute is None else 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep, self._clock = sleep, clock

    def acquire(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)
