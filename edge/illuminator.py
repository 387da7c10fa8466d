"""The liveness illuminator: an LED beside the camera pulsed in a random on/off pattern (``[liveness]
illuminator_pin``; docs/liveness.md, "Illumination response").

Time is cut into slots of ``slot_seconds``; at the start of each slot the LED takes a fresh random state from
:mod:`secrets` (nobody can predict the pattern, so a replayed video cannot have been lit the same way). A frame
is labelled with the LED's state only when the LED did not change during the ``settle_seconds`` before the
frame was delivered (its exposure and the camera's pipeline); otherwise it is left out. The door thread calls
:meth:`Illuminator.step` once per processed frame while a face is in view and :meth:`Illuminator.stop` when it
leaves, so the LED does not flicker at an empty doorway.

Like the door's other devices: keyword-only options, ``close()``, a context manager; the LED is off at start,
after ``stop()``, after ``close()`` (also from an ``atexit`` hook) and after an exception inside ``with``.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import threading
import time
from collections import deque
from typing import Callable

from gpiozero import DigitalOutputDevice

from .door import Closing

log = logging.getLogger(__name__)


class Illuminator(Closing):
    """``Illuminator(pin, *, slot_seconds=0.25, settle_seconds=0.15, pin_factory=None, clock=time.monotonic)``;
    ``clock`` must be the clock of the frames' capture times (:class:`edge.camera.CameraFeed` uses
    ``time.monotonic``)."""

    def __init__(self, pin: int, *, active_high: bool = True, slot_seconds: float = 0.25,
                 settle_seconds: float = 0.15, pin_factory=None, clock: Callable[[], float] = time.monotonic,
                 random_bit: Callable[[], int] | None = None):
        if slot_seconds <= 0 or settle_seconds < 0:
            raise ValueError("slot_seconds must be positive and settle_seconds not negative")
        self.pin_number = pin
        self.slot_seconds = float(slot_seconds)
        self.settle_seconds = float(settle_seconds)
        self.clock = clock
        self._random_bit = random_bit or (lambda: secrets.randbits(1))
        self._device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                           pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._closed = False
        self._running = False
        self._slot_end = 0.0
        # (time, lit) of every change: enough history for the frames still in the camera's pipeline
        self._changes: deque[tuple[float, bool]] = deque([(float("-inf"), False)], maxlen=64)
        atexit.register(self.close)
        log.info("illuminator on GPIO%d (random pattern, %.2f s slots)", pin, self.slot_seconds)

    @property
    def is_lit(self) -> bool:
        with self._lock:
            return not self._closed and bool(self._device.value)

    def step(self, now: float | None = None) -> bool:
        """Start the pattern, or at the end of a slot draw the LED's next state; returns whether it is lit.
        ``now`` defaults to the clock's time: the moment the pin really changes is what labels the frames."""
        with self._lock:
            if self._closed:
                return False
            now = self.clock() if now is None else now
            if not self._running or now >= self._slot_end:
                self._running = True
                self._set(bool(self._random_bit()), now)
                self._slot_end = now + self.slot_seconds
            return bool(self._device.value)

    def stop(self, now: float | None = None) -> None:
        """LED off and the pattern ended (no face in view)."""
        with self._lock:
            if self._closed:
                return
            now = self.clock() if now is None else now
            if self._running:
                self._set(False, now)
                self._running = False
            self._device.off()

    def lit_at(self, taken: float) -> bool | None:
        """The LED's state during the exposure of a frame delivered at ``taken`` (same clock as ``step``): True,
        False, or None when it changed within ``settle_seconds`` before (or too long ago to remember)."""
        with self._lock:
            state: bool | None = None
            for when, lit in reversed(self._changes):
                if when <= taken - self.settle_seconds:
                    state = lit
                    break
                if when <= taken:
                    return None                 # changed during the exposure
            return state

    def _set(self, lit: bool, now: float) -> None:
        if lit != bool(self._device.value):
            self._device.on() if lit else self._device.off()
            self._changes.append((now, lit))

    def close(self) -> None:
        """LED off and the pin given back; safe to call twice (atexit, a signal handler, ``with``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._device.off()
            finally:
                self._device.close()
        atexit.unregister(self.close)
