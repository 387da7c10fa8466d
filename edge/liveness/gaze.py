"""Gaze: a live person's eyes look around, even when asked to keep still; the irises of a photograph never move
within its eyes.

The iris model places the iris centre and the eye corners (:func:`edge.liveness.eyes.read_eyes`); the offset of
the one from the middle of the others, over the eye width and averaged over both eyes, is where the eyes look.
Holding, tilting or bending a print moves the corners and the iris together, so the offset stays put. The cue is
the range of that offset over a track (each value the median of 3 frames, so one frame's error is no movement),
in the direction that moved most. Measured: NUAA print sequences at most 0.04 over whole sequences (25 s, bending
included); people looking around 0.1-0.5 within 3 seconds.
"""

from __future__ import annotations

from collections import deque

MOTION = 0.102  # range of the gaze offset that counts as moving eyes (training split: 1.5 x the attacks' largest)


class GazeMotion:
    """Range of the gaze offset (x, y) over a track, in the direction that moved most."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=3)
        self._low: list[float] = []
        self._high: list[float] = []

    def update(self, gaze) -> float:
        self._recent.append((float(gaze[0]), float(gaze[1])))
        if len(self._recent) == 3:
            value = [sorted(column)[1] for column in zip(*self._recent)]
            self._low = value if not self._low else [min(a, b) for a, b in zip(self._low, value)]
            self._high = value if not self._high else [max(a, b) for a, b in zip(self._high, value)]
        return self.range

    @property
    def range(self) -> float:
        """The largest range (x or y) of the gaze offset so far; 0 until three frames were seen."""
        return max((high - low for low, high in zip(self._low, self._high)), default=0.0)
