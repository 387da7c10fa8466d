"""Illumination response: does the face answer the door's own light pulses like a live, three-dimensional face?

An LED beside the camera (white or 850 nm, :class:`edge.illuminator.Illuminator`) is switched on and off in a
random pattern that nobody can predict; every frame is labelled lit or unlit (or left out when the LED changed
during its exposure). Then, over the face:

- a live face **follows** the pattern: its mean brightness correlates with the on/off pattern, and the LED adds
  a noticeable share to it (:func:`pattern_correlation`, :func:`relative_response`);
- its lit-minus-unlit difference, divided by the unlit face (which removes the skin's own light and dark), has
  **3-D shading**: the nose, cheeks and forehead face the LED and are nearer to it, the eye sockets, the sides of
  the face and under the nose are not (:func:`shading_structure`);
- a **print** follows the pattern just as well, but its relative difference is flat: a sheet scales every
  pixel by about the same factor (a tilt or a bend gives a smooth gradient along one direction, which the
  measure removes);
- a **screen** barely follows: it emits its own light and reflects little of the LED's.

All functions are pure (numpy in, numbers out). :class:`IlluminationResponse` collects the labelled face patches
of one track and gives the three numbers; the judge (``judge.py``) turns them into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..recognition.align import ALIGN_ZOOM, similarity_transform, template

GRID = 24                     # the face patch is resampled to GRID x GRID cells
INNER = (0.18, 0.12, 0.82, 0.92)   # part of the detector's box used (x0, y0, x1, y1 as fractions): the inner face
SATURATED = 250               # a grey level at or above this is clipped
DARK_FLOOR = 20.0             # grey level below which a cell's relative response is not measured (pupils, brows)
MIN_EACH = 4                  # lit and unlit frames needed, each, before any number is given


@dataclass(frozen=True)
class LightNumbers:
    """What the face did under the pulses: ``follow`` (correlation of its brightness with the pattern, -1..1),
    ``response`` (the LED's share of the unlit brightness), ``shading`` (3-D structure of the relative
    difference, noise removed; 0 for a flat sheet), ``noise`` (the structure noise alone would show), and how
    many lit and unlit frames and changing pairs they rest on."""

    follow: float
    response: float
    shading: float
    noise: float
    lit: int
    unlit: int
    pairs: int


def face_patch(frame_bgr: np.ndarray, box, landmarks=None) -> np.ndarray | None:
    """The inner face as a ``GRID`` x ``GRID`` float32 grey patch, or None when it lies outside the frame.

    With the five landmarks the face is first warped upright onto fixed landmark positions, so that a cell
    shows the same part of the face in every frame although the head moves; without them the inner part of
    the box is used. Area-averaged, so camera noise shrinks. Cells with clipped (saturated) pixels are NaN: a
    clipped pixel cannot show how much light was added."""
    H, W = frame_bgr.shape[:2]
    if landmarks is not None:
        size = GRID * 4
        try:
            m = similarity_transform(np.asarray(landmarks, np.float64), template(size, zoom=ALIGN_ZOOM))
        except ValueError:
            return None
        corners = cv2.invertAffineTransform(m) @ np.array([[0, 0, 1], [size, 0, 1], [0, size, 1],
                                                           [size, size, 1]], np.float64).T
        if corners[0].min() < 0 or corners[1].min() < 0 or corners[0].max() > W or corners[1].max() > H:
            return None
        x0, y0 = int(corners[0].min()), int(corners[1].min())
        x1, y1 = int(np.ceil(corners[0].max())), int(np.ceil(corners[1].max()))
        m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)      # the same warp, from the cut-out
        region = frame_bgr[y0:y1, x0:x1]
        face = cv2.warpAffine(cv2.cvtColor(region, cv2.COLOR_BGR2GRAY), m, (size, size), flags=cv2.INTER_LINEAR)
        # one clipped channel is enough to stop the grey scaling
        top = cv2.warpAffine(region.max(axis=2), m, (size, size), flags=cv2.INTER_NEAREST)
    else:
        x, y, w, h = (float(v) for v in box)
        x0, y0 = int(round(x + INNER[0] * w)), int(round(y + INNER[1] * h))
        x1, y1 = int(round(x + INNER[2] * w)), int(round(y + INNER[3] * h))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        region = frame_bgr[y0:y1, x0:x1]
        face, top = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY), region.max(axis=2)
    patch = cv2.resize(face, (GRID, GRID), interpolation=cv2.INTER_AREA).astype(np.float32)
    clipped = cv2.resize((top >= SATURATED).astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
    patch[clipped > 0.01] = np.nan
    return patch


def pattern_correlation(brightness: Sequence[float], pattern: Sequence[bool]) -> float:
    """Pearson correlation of the face's mean brightness per frame with the on/off pattern (1 = follows
    perfectly); 0 when either does not vary."""
    b = np.asarray(brightness, np.float64)
    p = np.asarray(pattern, np.float64)
    if b.size != p.size or b.size < 2 or b.std() == 0 or p.std() == 0:
        return 0.0
    return float(np.corrcoef(b, p)[0, 1])


def _pairs(pattern: Sequence[bool]) -> list[tuple[int, int]]:
    """(lit, unlit) indices of neighbouring frames where the LED changed, not overlapping: neighbours in time
    differ least in pose and expression, and since the pattern is random, lit comes first about as often as
    unlit, so what the face did between them averages out instead of adding up."""
    out, k = [], 0
    while k + 1 < len(pattern):
        if pattern[k] != pattern[k + 1]:
            out.append((k, k + 1) if pattern[k] else (k + 1, k))
            k += 2
        else:
            k += 1
    return out


def _pair_stack(patches: Sequence[np.ndarray], pattern: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(differences lit - unlit, unlit patches), each (pairs, GRID, GRID), for the pairs of :func:`_pairs`."""
    pairs = _pairs(pattern)
    diff = np.stack([patches[i] - patches[j] for i, j in pairs]).astype(np.float64)
    unlit = np.stack([patches[j] for _, j in pairs]).astype(np.float64)
    return diff, unlit


def relative_response(patches: Sequence[np.ndarray], pattern: Sequence[bool]) -> float:
    """The LED's share of the face's brightness (0.2: the LED adds 20%): over the pairs of neighbouring frames
    where the LED changed, the median of mean(lit - unlit) / mean(unlit); 0 without a pair."""
    if not _pairs(pattern):
        return 0.0
    diff, unlit = _pair_stack(patches, pattern)
    common = np.isfinite(diff).all(axis=0)
    if not common.any():
        return 0.0
    return float(np.median(diff[:, common].mean(axis=1) / np.maximum(unlit[:, common].mean(axis=1), 1.0)))


def _two_way_residual(values: np.ndarray) -> np.ndarray:
    """What is left after removing an additive row effect and column effect (fitted on the cells that are not
    NaN): a plane, or any bend of a sheet along one image direction (f(x) + g(y)), leaves nothing."""
    valid = ~np.isnan(values)
    v = np.where(valid, values, 0.0)
    rows = np.zeros(values.shape[0])
    cols = np.zeros(values.shape[1])
    for _ in range(10):              # alternating least squares with missing cells
        rows = np.sum(np.where(valid, v - cols[None, :], 0), axis=1) / np.maximum(valid.sum(axis=1), 1)
        cols = np.sum(np.where(valid, v - rows[:, None], 0), axis=0) / np.maximum(valid.sum(axis=0), 1)
    return np.where(valid, v - rows[:, None] - cols[None, :], np.nan)


def shading_structure(patches: Sequence[np.ndarray], pattern: Sequence[bool]) -> tuple[float, float]:
    """(structure, noise): 3-D shading of the face under the LED, relative to the LED's mean effect (0 for a
    flat sheet), and the structure that camera noise and movement alone would show (how small a structure the
    frames could have revealed: a flat verdict needs it low).

    Over the pairs of neighbouring frames where the LED changed, R = mean(lit - unlit) / mean(unlit) per cell
    (which removes the albedo: the skin's or the print's own light and dark); the RMS of R's two-way residual,
    minus what camera noise and movement alone would leave (from the pair-to-pair spread of each cell's
    difference), over the mean of R. Live faces: the nose, cheeks and forehead against the eye sockets, the sides and under the nose.
    A uniform or one-directional R (a print, tilted or bent round one axis) scores near 0."""
    if len(_pairs(pattern)) < 2:
        return 0.0, float("inf")
    diff, unlit = _pair_stack(patches, pattern)
    n = len(diff)
    floor = unlit.mean(axis=0)                  # NaN where any pair had a clipped cell
    floor[floor < DARK_FLOOR] = np.nan          # too dark to measure a share of (pupils, brows, hair)
    ratio = diff.mean(axis=0) / floor                       # a ratio of means: no bias from the division
    level = float(np.nanmean(ratio)) if np.isfinite(ratio).any() else 0.0
    if level <= 0 or np.isfinite(ratio).sum() < GRID * GRID // 2:
        return 0.0, float("inf")
    residual = _two_way_residual(ratio)
    noise = np.nanmean(diff.var(axis=0, ddof=1) / floor ** 2) / n
    rows, cols = ratio.shape
    expected = float(noise) * (rows - 1) * (cols - 1) / (rows * cols)
    residual_ms = float(np.nanmean(residual ** 2))
    return float(np.sqrt(max(0.0, residual_ms - expected)) / level), float(np.sqrt(expected) / level)


class IlluminationResponse:
    """The labelled face patches of one track (a bounded number, the most recent) and their numbers."""

    def __init__(self, *, keep: int = 40):
        self.keep = keep
        self._patches: list[np.ndarray] = []
        self._lit: list[bool] = []
        self._numbers: LightNumbers | None = None
        self._fresh = True

    def add(self, frame_bgr: np.ndarray, box, lit: bool, landmarks=None) -> None:
        patch = face_patch(frame_bgr, box, landmarks)
        if patch is None:
            return
        self._patches.append(patch)
        self._lit.append(bool(lit))
        self._fresh = False
        if len(self._patches) > self.keep:
            del self._patches[0], self._lit[0]

    def numbers(self) -> LightNumbers | None:
        """None until ``MIN_EACH`` lit and unlit frames are in (computed once per added frame)."""
        if not self._fresh:
            self._numbers, self._fresh = self._compute(), True
        return self._numbers

    def _compute(self) -> LightNumbers | None:
        lit = sum(self._lit)
        unlit = len(self._lit) - lit
        if lit < MIN_EACH or unlit < MIN_EACH:
            return None
        stack = np.stack(self._patches)
        common = np.isfinite(stack).all(axis=0)      # cells clipped in no frame: the same cells every frame
        brightness = stack[:, common].mean(axis=1) if common.sum() >= 8 else np.nan_to_num(stack).mean(axis=(1, 2))
        shading, noise = shading_structure(self._patches, self._lit)
        return LightNumbers(follow=pattern_correlation(brightness, self._lit),
                            response=relative_response(self._patches, self._lit), shading=shading, noise=noise,
                            lit=lit, unlit=unlit, pairs=len(_pairs(self._lit)))
