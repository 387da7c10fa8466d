"""Mouth motion: a live face talks, smiles or swallows; the lips of a photograph never part or close.

The gap between the inner lips (mesh points 13 and 14) over the nose's length (168 to 2) - both vertical, so a
print tilted or bent round a horizontal axis shrinks them together - varies by 0.1-0.7 within three seconds on
people talking and stays within 0.06 on every NUAA print sequence (mesh jitter and bending included).
"""

from __future__ import annotations

import numpy as np

MOTION = 0.15  # range of the opening over the track that counts as a moving mouth


def mouth_opening(mesh_points: np.ndarray) -> float:
    p = mesh_points
    return float(np.linalg.norm(p[13] - p[14]) / max(float(np.linalg.norm(p[168] - p[2])), 1e-6))


class MouthMotion:
    """Range (max - min) of the mouth opening over a track, each value the median of the last three frames (one
    frame's mesh error is not a movement)."""

    def __init__(self):
        self._recent: list[float] = []
        self.low = np.inf
        self.high = -np.inf

    def update(self, opening: float) -> float:
        self._recent = (self._recent + [opening])[-3:]
        if len(self._recent) == 3:
            value = float(np.median(self._recent))
            self.low, self.high = min(self.low, value), max(self.high, value)
        return self.range

    @property
    def range(self) -> float:
        return float(self.high - self.low) if self.high >= self.low else 0.0
