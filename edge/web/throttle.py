"""Login throttling per account and per client address.

After ``max_failures`` failed logins within ``lock_seconds`` a key (an account name or a client address) is
locked for ``lock_seconds`` from its latest failure; a locked login is refused before the password is even
checked, so guessing stops completely. A success clears the account's counter but not the address's: otherwise an
attacker holding one valid account could reset the address counter between guesses at other accounts.
The internal lock guards only the counters; the slow bcrypt check runs outside it.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    """Counts recent failures per key; ``locked_for`` says how long a key must still wait."""

    def __init__(self, *, max_failures: int, lock_seconds: float, max_keys: int = 10000, clock=time.monotonic):
        self.max_failures = int(max_failures)
        self.lock_seconds = float(lock_seconds)
        self.max_keys = int(max_keys)
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def locked_for(self, *keys: str) -> float:
        """Seconds left before any of ``keys`` may try again (0 when none is locked)."""
        now = self.clock()
        with self._lock:
            return max((self._remaining(k, now) for k in keys), default=0.0)

    def failure(self, *keys: str) -> float:
        """Record one failed attempt for each key; returns the lock now in force (0 if none)."""
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._prune(now)
            for key in keys:
                times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
                times.append(now)
            return max((self._remaining(k, now) for k in keys), default=0.0)

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _remaining(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if not times or len(times) < self.max_failures:
            return 0.0
        if times[-1] - times[0] > self.lock_seconds:
            return 0.0          # the failures were spread out: no burst, no lock
        return max(0.0, times[-1] + self.lock_seconds - now)

    def _prune(self, now: float) -> None:
        stale = [k for k, t in self._failures.items() if not t or now - t[-1] > self.lock_seconds]
        for k in stale:
            del self._failures[k]
        while len(self._failures) >= self.max_keys:   # still full: forget the oldest activity
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
