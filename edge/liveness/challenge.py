"""The strict mode's challenge: at a moment the camera's subject cannot predict, ask for a blink, and accept only
a blink that starts within a short window after the request.

A replayed video blinks when it was recorded, not when asked. To keep a replay of someone who happens to blink
often from passing by luck, a round only counts when no blink started in the ``quiet`` seconds before the
request; a blink too early or too late fails the round and a new one is asked at a new random moment.
"""

from __future__ import annotations

import random

DELAY = (0.5, 1.5)     # seconds from the first usable frame to the request
WINDOW = (0.15, 1.2)   # seconds after the request in which the blink must start (0.15: nobody reacts faster)
QUIET = 1.0            # seconds before the request without a blink


class Challenge:
    """``rng`` (a ``random.Random``) picks the moments; ``start(now)`` arms it, ``asking(now)`` says whether the
    door should signal "blink now", ``observe_blink(start)`` and ``update(now)`` run the rounds."""

    def __init__(self, *, rng: random.Random | None = None, delay=DELAY, window=WINDOW, quiet: float = QUIET,
                 rounds: int = 1):
        self.rng = rng or random.SystemRandom()
        self.delay, self.window, self.quiet, self.rounds = delay, window, quiet, rounds
        self.ask_at: float | None = None
        self.passed = 0
        self.failed = 0
        self._last_blink: float | None = None

    def start(self, now: float) -> None:
        if self.ask_at is None:
            self._arm(now)

    def _arm(self, now: float) -> None:
        self.ask_at = now + self.rng.uniform(*self.delay)

    @property
    def done(self) -> bool:
        return self.passed >= self.rounds

    def asking(self, now: float) -> bool:
        return (not self.done and self.ask_at is not None
                and self.ask_at <= now <= self.ask_at + self.window[1])

    def observe_blink(self, started: float) -> None:
        """A blink that started at ``started``: answers the request, spoils it, or is ignored."""
        previous, self._last_blink = self._last_blink, started
        if self.done or self.ask_at is None:
            return
        lo, hi = self.ask_at + self.window[0], self.ask_at + self.window[1]
        if lo <= started <= hi:
            quiet = previous is None or previous < self.ask_at - self.quiet
            if quiet:
                self.passed += 1
                if not self.done:
                    self._arm(started + 0.5)
                return
            self._fail(started)
        elif self.ask_at - self.quiet <= started < lo:
            self._fail(started)  # blinked just before being asked (or a replay blinking often)

    def update(self, now: float) -> None:
        """Expire a request nobody answered."""
        if not self.done and self.ask_at is not None and now > self.ask_at + self.window[1]:
            self._fail(now)

    def _fail(self, now: float) -> None:
        self.failed += 1
        self._arm(now)
