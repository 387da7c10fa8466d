"""A sliding-window rate limit per key (a client address, an administrator): signups, remote unlocks.

``limit.take(key)`` counts one attempt and returns 0 when it is allowed, or the seconds until the oldest counted
attempt leaves the window. Refused attempts are not counted, so waiting always helps. Memory is bounded: keys
whose attempts have all left the window are forgotten, and beyond ``max_keys`` the least recent go first.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimit:
    def __init__(self, *, events: int, seconds: float, max_keys: int = 10000, clock=time.monotonic):
        self.events = int(events)
        self.seconds = float(seconds)
        self.max_keys = int(max_keys)
        self.clock = clock
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Count one attempt for ``key`` if allowed; returns 0, or how long to wait before the next is allowed."""
        now = self.clock()
        with self._lock:
            times = self._times.get(key)
            if times is None:
                if len(self._times) >= self.max_keys:
                    self._prune(now)
                times = self._times[key] = deque()
            while times and now - times[0] >= self.seconds:
                times.popleft()
            if len(times) >= self.events:
                return times[0] + self.seconds - now
            times.append(now)
            return 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._times.items() if not t or now - t[-1] >= self.seconds]:
            del self._times[key]
        while len(self._times) >= self.max_keys:
            del self._times[min(self._times, key=lambda k: self._times[k][-1] if self._times[k] else 0.0)]
