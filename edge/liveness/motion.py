"""Depth from motion: does the nose move like a point in front of the face, or like the rest of a flat picture?

A flat copy (print, screen) moves as one plane, so a homography fitted to points of the face's own "plane" (eye
corners, brows, mouth corners) also predicts where the nose went. On a real head turning, the nose tip is 2-3 cm
in front of that plane and leaves the homography's prediction by a tenth of the eye distance or more.

Points are tracked in the pixels (pyramidal Lucas-Kanade, seeded at the mesh points of the key frame, each
checked forward and backward), never taken from the mesh of the later frame: the mesh's 3-D face prior draws the
nose of a tilted print where a turned head would have it. The outline is left out of the fit, because a print bent
round a vertical axis puts its edges behind its middle, as a head does; eyes, brows and mouth corners sit at
almost the same depth on a head and on a bent print alike. While the face has turned too little the cue abstains
(returns None): a still face gives no evidence either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .mesh import BROWS, EYE_CORNERS, MOUTH_CORNERS

PLANE_POINTS = EYE_CORNERS + BROWS + MOUTH_CORNERS + (168, 6, 133, 362, 159, 386, 145, 374, 0, 17)
NOSE_POINTS = (1, 4, 19, 94)
TRACKED = np.array(sorted(set(PLANE_POINTS + NOSE_POINTS)))
LK_PARAMS = dict(winSize=(15, 15), maxLevel=3,
                 criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
FB_MAX_ERROR = 0.8       # pixels: forward-backward disagreement beyond this drops the point
MIN_TURN = 0.08          # yaw/pitch change (fraction of eye distance) below which the cue abstains
MAX_TURN = 0.6           # beyond this between two frames the tracking, not the head, moved: abstain too


@dataclass(frozen=True)
class Parallax:
    """``residual``: median nose miss of the plane's homography over the eye distance; ``turn``: how far the
    face turned between the two frames (same unit)."""

    residual: float
    turn: float


def track(prev_gray: np.ndarray, cur_gray: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points tracked from ``prev_gray`` to ``cur_gray`` and a mask of those that survive the forward-backward
    check (and stay inside the frame)."""
    p0 = np.asarray(points, np.float32).reshape(-1, 1, 2)
    lk: dict = dict(LK_PARAMS)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, cur_gray, p0, None, **lk)  # type: ignore[call-overload]
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(cur_gray, prev_gray, p1, None, **lk)  # type: ignore[call-overload]
    fb = np.linalg.norm((p0 - p0b).reshape(-1, 2), axis=1)
    h, w = cur_gray.shape[:2]
    q = p1.reshape(-1, 2)
    inside = (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] < w) & (q[:, 1] < h)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < FB_MAX_ERROR) & inside
    return q, ok


def turn_amount(before: np.ndarray, after: np.ndarray, eye_distance: float) -> float:
    """How much the nose moved relative to the middle of the eyes and mouth, over the eye distance: a proxy for the
    yaw/pitch change between two frames of tracked points (indexed like the mesh)."""
    def offset(p):
        anchor = p[list(EYE_CORNERS + MOUTH_CORNERS)].mean(axis=0)
        return p[list(NOSE_POINTS)].mean(axis=0) - anchor
    return float(np.linalg.norm(offset(after) - offset(before)) / max(eye_distance, 1e-6))


def nose_residual(before: np.ndarray, after: np.ndarray, ok: np.ndarray, eye_distance: float) -> float | None:
    """Median distance of the nose points from where the plane's homography puts them, over the eye distance;
    None if too few points survived tracking."""
    plane = [i for i in PLANE_POINTS if ok[i]]
    nose = [i for i in NOSE_POINTS if ok[i]]
    if len(plane) < 8 or len(nose) < 2:
        return None
    matrix, _ = cv2.findHomography(before[plane].astype(np.float64), after[plane].astype(np.float64), 0)
    if matrix is None:
        return None
    src = before[nose].astype(np.float64).reshape(-1, 1, 2)
    predicted = cv2.perspectiveTransform(src, matrix).reshape(-1, 2)
    miss = np.linalg.norm(predicted - after[nose], axis=1)
    return float(np.median(miss) / max(eye_distance, 1e-6))


@dataclass
class _Key:
    """The key frame's grey face region and the tracked points (frame coordinates minus the region's corner)."""

    gray: np.ndarray
    roi: tuple[int, int, int, int]
    shape: tuple
    key_points: np.ndarray
    points: np.ndarray
    ok: np.ndarray
    time: float
    eye_distance: float


class ParallaxTracker:
    """Tracks the mesh points of a key frame through the following frames and measures the nose's parallax once
    the face has turned by at least ``min_turn``; then the current frame becomes the key frame.

    Only a region around the key frame's face is converted to grey and tracked (cost)."""

    def __init__(self, *, min_turn: float = MIN_TURN, max_age: float = 1.5):
        self.min_turn = min_turn
        self.max_age = max_age
        self._key: _Key | None = None

    def reset(self) -> None:
        self._key = None

    def update(self, frame_bgr: np.ndarray, mesh_points: np.ndarray, eye_distance: float,
               now: float) -> Parallax | None:
        """Feed one frame and the face's mesh points; a measurement when the turn was large enough."""
        key = self._key
        if key is None or now - key.time > self.max_age or key.shape != frame_bgr.shape:
            self._key = _make_key(frame_bgr, mesh_points, eye_distance, now)
            return None
        gray = _crop(frame_bgr, key.roi)
        if gray is None:
            self._key = _make_key(frame_bgr, mesh_points, eye_distance, now)
            return None
        moved, ok = track(key.gray, gray, key.points[TRACKED])
        key.points[TRACKED] = moved
        key.ok[TRACKED] &= ok
        key.gray = gray
        if key.ok[TRACKED].sum() < len(TRACKED) // 2:
            self._key = _make_key(frame_bgr, mesh_points, eye_distance, now)
            return None
        turn = turn_amount(key.key_points, key.points, key.eye_distance)
        if turn < self.min_turn:
            return None
        self._key = _make_key(frame_bgr, mesh_points, eye_distance, now)
        if turn > MAX_TURN:
            return None
        residual = nose_residual(key.key_points, key.points, key.ok, key.eye_distance)
        return None if residual is None else Parallax(residual=residual, turn=turn)


def _crop(frame_bgr: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray | None:
    x0, y0, x1, y1 = roi
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return np.asarray(cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY))


def _make_key(frame_bgr: np.ndarray, mesh_points: np.ndarray, eye_distance: float, now: float) -> _Key | None:
    points = np.asarray(mesh_points, np.float32)
    lo, hi = points.min(axis=0), points.max(axis=0)
    grow = 0.6 * (hi - lo)
    H, W = frame_bgr.shape[:2]
    x0, y0 = (max(int(np.floor(v)), 0) for v in lo - grow)
    x1, y1 = min(int(np.ceil((hi + grow)[0])), W), min(int(np.ceil((hi + grow)[1])), H)
    roi = (x0, y0, x1, y1)
    gray = _crop(frame_bgr, roi)
    if gray is None:
        return None
    key_points = points - np.array([x0, y0], np.float32)
    return _Key(gray=gray, roi=roi, shape=frame_bgr.shape, key_points=key_points, points=key_points.copy(),
                ok=np.ones(len(points), bool), time=now, eye_distance=max(float(eye_distance), 1.0))
