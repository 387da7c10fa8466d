"""Login throttling that slows a password guesser without letting anyone lock the owner out.

Failures are counted per (account, address) pair. The first ``max_failures`` failures of a pair cost nothing;
each further one makes that pair wait twice as long as the last (``base_delay``, doubling, at most
``max_delay``). An account is therefore never locked against its owner typing the right password from an
address that has not failed: a stranger guessing at the admin's name from another machine slows only himself.

Two wider counters catch what a pair cannot, each after ``wide_failures`` failures:
- an account attacked from many addresses (a distributed guess) delays the *failing* addresses on that account;
  an address that never failed is never delayed;
- an address guessing at many accounts (password spraying) is delayed on every account it has not logged in to
  successfully; a pair that has logged in before keeps only its own counter, so a person behind the same NAT or
  SSH tunnel as the guesser who has logged in before still gets in.
A success clears that pair's counter but not the wider ones: otherwise an attacker holding one valid account
could reset the address counter between guesses at other accounts. Counters are forgotten after
``forget_seconds`` without a failure. The internal lock guards only the counters; bcrypt runs outside it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0


class LoginThrottle:
    """``wait(account, address)`` before checking a password; ``failure`` or ``success`` after it."""

    def __init__(self, *, max_failures: int = 5, max_delay: float = 900.0, base_delay: float = 30.0,
                 wide_failures: int | None = None, forget_seconds: float | None = None, max_keys: int = 10000,
                 clock=time.monotonic):
        self.max_failures = int(max_failures)
        self.max_delay = float(max_delay)
        self.base_delay = min(float(base_delay), self.max_delay)
        self.wide_failures = int(wide_failures if wide_failures is not None else 4 * self.max_failures)
        self.forget_seconds = float(forget_seconds if forget_seconds is not None else 4 * self.max_delay)
        self.max_keys = int(max_keys)
        self.clock = clock
        self._counts: dict[tuple, _Count] = {}
        self._trusted: dict[tuple[str, str], float] = {}     # pairs that logged in: when they last did
        self._lock = threading.Lock()

    def wait(self, account: str, address: str) -> float:
        """Seconds before ``account`` may be tried from ``address`` again (0: go ahead)."""
        now = self.clock()
        with self._lock:
            return self._wait(account, address, now)

    def failure(self, account: str, address: str) -> float:
        """Record one wrong password; returns the wait now in force for this pair."""
        now = self.clock()
        with self._lock:
            if len(self._counts) + 3 > self.max_keys:
                self._prune(now)
            for key in (("pair", account, address), ("account", account), ("address", address)):
                count = self._live(key, now) or self._counts.setdefault(key, _Count())
                count.failures += 1
                count.last = now
            return self._wait(account, address, now)

    def success(self, account: str, address: str) -> None:
        """The right password: this pair starts afresh and is trusted against the wider counters."""
        now = self.clock()
        with self._lock:
            self._counts.pop(("pair", account, address), None)
            self._trusted.pop((account, address), None)
            self._trusted[(account, address)] = now
            while len(self._trusted) > self.max_keys:
                del self._trusted[next(iter(self._trusted))]      # oldest login first (insertion order)

    # -- internals ------------------------------------------------------------------------------------------
    def _delay(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(failures - free, 32))

    def _remaining(self, count: _Count | None, free: int, now: float) -> float:
        if count is None:
            return 0.0
        return max(0.0, count.last + self._delay(count.failures, free) - now)

    def _live(self, key: tuple, now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last > self.forget_seconds:
            del self._counts[key]
            return None
        return count

    def _wait(self, account: str, address: str, now: float) -> float:
        pair = self._live(("pair", account, address), now)
        waits = [self._remaining(pair, self.max_failures, now)]
        if (account, address) not in self._trusted:
            if pair is not None:       # the account-wide count slows only addresses that failed on this account
                waits.append(self._remaining(self._live(("account", account), now), self.wide_failures, now))
            waits.append(self._remaining(self._live(("address", address), now), self.wide_failures, now))
        return max(waits)

    def _prune(self, now: float) -> None:
        for key in [k for k, c in self._counts.items() if now - c.last > self.forget_seconds]:
            del self._counts[key]
        while len(self._counts) + 3 > self.max_keys:       # still full: forget the oldest activity
            del self._counts[min(self._counts, key=lambda k: self._counts[k].last)]
