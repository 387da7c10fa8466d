"""Whether an unlock command from the broker may open the door: pure logic, no I/O.

Anyone who can publish on the broker can send a command, so the door opens only when all hold:
``mqtt.allow_remote_unlock`` is on, the command carries the configured code (compared in constant time), and
fewer than ``mqtt.unlock_attempts_per_minute`` commands arrived in the last minute (the project's sliding-window
:class:`~edge.ratelimit.RateLimit`). The limit counts every attempt, right or wrong, so guessing the code is
slow.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Callable

from ..ratelimit import RateLimit
from .discovery import LockCommand

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str          # for the access log: why a command was refused ("" when accepted)


class UnlockGate:
    def __init__(self, *, allow: bool, code: str, attempts_per_minute: int,
                 clock: Callable[[], float] = time.monotonic):
        self.allow = allow
        self._code = code.encode()
        self.limit = attempts_per_minute
        self._attempts = RateLimit(events=attempts_per_minute, seconds=WINDOW_SECONDS, clock=clock)

    def judge(self, command: LockCommand) -> Verdict:
        """Judge an UNLOCK command (anything else is refused as unreadable)."""
        if command.action != "UNLOCK":
            return Verdict(False, "not an unlock command")
        if not self.allow:
            return Verdict(False, "remote unlock is disabled (mqtt.allow_remote_unlock = false)")
        if self._attempts.take("mqtt"):
            return Verdict(False, f"rate limited: more than {self.limit} unlock commands in a minute")
        if command.code is None:
            return Verdict(False, "no code given")
        if not self._code or not hmac.compare_digest(command.code.encode(), self._code):
            return Verdict(False, "wrong code")
        return Verdict(True, "")
