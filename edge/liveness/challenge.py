"""The strict mode's challenge: at a moment the camera's subject cannot predict, ask for a blink, and accept only
a blink that starts within a short window after the request.

A replayed video blinks when it was recorded, not when asked. To keep a replay of someone who happens to blink
often from passing by luck: ``rounds`` requests must be answered, a round only counts when no blink started in
the ``quiet`` seconds before its request, once asking has begun every blink outside a window fails a round (the
person is asked to keep their eyes open until the light asks), and after ``max_requests`` requests the track
gets no more (it stays undecided, so the door refuses it). A failed round is followed by a new request at a new
random moment. ``scripts/bench_liveness.py`` measures how often a replay of natural blinking
still passes by chance.
"""

from __future__ import annotations

import random

DELAY = (0.5, 1.5)     # seconds from the first usable frame to the request
NEXT_DELAY = (1.1, 2.5)  # seconds from an answered blink to the next request (longer than QUIET)
WINDOW = (0.2, 0.8)    # seconds after the request in which the blink must start (0.2: nobody reacts faster)
QUIET = 1.0            # seconds before the request without a blink
ROUNDS = 2
MAX_REQUESTS = 3


class Challenge:
    """``rng`` (a ``random.Random``) picks the moments; ``start(now)`` arms it, ``asking(now)`` says whether the
    door should signal "blink now", ``observe_blink(start)`` and ``update(now)`` run the rounds."""

    def __init__(self, *, rng: random.Random | None = None, delay=DELAY, window=WINDOW, quiet: float = QUIET,
                 rounds: int = ROUNDS, max_requests: int = MAX_REQUESTS):
        self.rng = rng or random.SystemRandom()
        self.delay, self.window, self.quiet, self.rounds = delay, window, quiet, rounds
        self.max_requests = max(max_requests, rounds)
        self.requests = 0
        self.ask_at: float | None = None
        self.passed = 0
        self.failed = 0
        self._last_blink: float | None = None
        self._first_ask: float | None = None

    def start(self, now: float) -> None:
        if self.ask_at is None and self.requests == 0:
            self._arm(now)

    def _arm(self, now: float, delay=None) -> None:
        if self.requests >= self.max_requests:
            self.ask_at = None  # no more requests for this track
            return
        self.requests += 1
        self.ask_at = now + self.rng.uniform(*(delay or self.delay))
        if self._first_ask is None:
            self._first_ask = self.ask_at

    @property
    def exhausted(self) -> bool:
        return self.ask_at is None and self.requests >= self.max_requests and not self.done

    @property
    def done(self) -> bool:
        return self.passed >= self.rounds

    def asking(self, now: float) -> bool:
        return (not self.done and self.ask_at is not None
                and self.ask_at <= now <= self.ask_at + self.window[1])

    def observe_blink(self, started: float) -> None:
        """A blink that started at ``started``: answers the request, fails a round, or (before the first
        request) just moves the first request later."""
        previous, self._last_blink = self._last_blink, started
        if self.done or self.ask_at is None:
            return
        lo, hi = self.ask_at + self.window[0], self.ask_at + self.window[1]
        quiet = previous is None or previous < self.ask_at - self.quiet
        if lo <= started <= hi and quiet:
            self.passed += 1
            if not self.done:
                self._arm(started, NEXT_DELAY)
        elif self._first_ask is not None and started < self._first_ask and self.passed == 0 and self.failed == 0:
            # a natural blink before anything was asked: ask later (no request used)
            self.ask_at = self._first_ask = max(self.ask_at, started + self.rng.uniform(*self.delay))
        else:
            self._fail(started)  # once asking has begun, a blink outside a window fails the round

    def update(self, now: float) -> None:
        """Expire a request nobody answered."""
        if not self.done and self.ask_at is not None and now > self.ask_at + self.window[1]:
            self._fail(now)

    def _fail(self, now: float) -> None:
        self.failed += 1
        self._arm(now)
