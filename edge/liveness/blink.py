"""Blink: the eyelids close to well under half their usual opening and open again within a moment.

The opening comes from the iris model (:mod:`edge.liveness.eyes`), scaled to pixels by each eye's width and
divided by a rigid vertical length of the face (nose bridge to the base of the nose), so that a print tilted away
from the camera, which squashes the whole face vertically, does not look like closing eyes. A blink is a *dip
and recovery*: the opening falls below ``dip`` times its recent open level (the running median of the last
``baseline_seconds``) and comes back above ``recover`` times it within ``max_closed`` seconds. Measured on the
shared data: real blinks dip to 0.05-0.35 of the open level; still faces and prints (tilted, bent, held by hand)
stay above 0.65, mesh jitter included.
"""

from __future__ import annotations

from collections import deque

import numpy as np

DIP = 0.45
RECOVER = 0.75
MAX_CLOSED = 0.8      # seconds from the dip to the reopened eye
BASELINE_SECONDS = 2.0
MIN_BASELINE = 3      # open frames needed before a dip counts


def normalised_opening(left: float, right: float, mesh_points: np.ndarray) -> float:
    """Mean lid gap of both eyes in pixels over the nose bridge-to-base length (a foreshortening-free ratio)."""
    p = mesh_points
    width_left = float(np.linalg.norm(p[133] - p[33]))
    width_right = float(np.linalg.norm(p[263] - p[362]))
    nose = float(np.linalg.norm(p[168] - p[2]))
    return float((left * width_left + right * width_right) / 2 / max(nose, 1e-6))


def dip_ratio(openings: np.ndarray) -> float:
    """Smallest opening over the median one: the depth of the deepest dip in a series (1.0 = no dip)."""
    x = np.asarray(openings, np.float64)
    if len(x) == 0:
        return 1.0
    return float(x.min() / max(np.median(x), 1e-9))


class BlinkDetector:
    """Feed one opening per frame; ``update`` returns the time a blink started when one has just completed."""

    def __init__(self, *, dip: float = DIP, recover: float = RECOVER, max_closed: float = MAX_CLOSED,
                 baseline_seconds: float = BASELINE_SECONDS):
        self.dip, self.recover, self.max_closed = dip, recover, max_closed
        self.baseline_seconds = baseline_seconds
        self._open: deque[tuple[float, float]] = deque()
        self._closed_since: float | None = None
        self._too_long = False
        self.lowest = 1.0  # deepest dip ratio seen (for the access log)

    def reset(self) -> None:
        self._open.clear()
        self._closed_since = None
        self._too_long = False

    def baseline(self) -> float | None:
        if len(self._open) < MIN_BASELINE:
            return None
        return float(np.median([v for _, v in self._open]))

    def update(self, opening: float, now: float) -> float | None:
        while self._open and now - self._open[0][0] > self.baseline_seconds:
            self._open.popleft()
        base = self.baseline()
        if base is None:
            self._open.append((now, opening))
            return None
        ratio = opening / max(base, 1e-9)
        self.lowest = min(self.lowest, ratio)
        if self._closed_since is not None and now - self._closed_since > self.max_closed:
            self._closed_since = None  # closed too long (looking down, dozing): not a blink ...
            self._too_long = True      # ... until the eyes are open again
        if ratio < self.dip:
            if self._closed_since is None and not self._too_long:
                self._closed_since = now
            return None
        if ratio < self.recover:
            return None  # closing or reopening: wait
        self._too_long = False
        self._open.append((now, opening))
        if self._closed_since is not None:
            started, self._closed_since = self._closed_since, None
            return started
        return None
