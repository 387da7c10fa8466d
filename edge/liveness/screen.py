"""Deny cues: signs in a single frame that the face is on a screen or a sheet of paper.

Each is a pure function of the frame and the face box returning a score in [0, 1] (0 = no sign):

- :func:`outline_score` - a phone, tablet or laptop bezel or the edges of a print: long straight edges close
  around the face on three or four sides (a background door frame rarely boxes a face in that tightly).
- :func:`glare_score` - a specular reflection of a glossy screen or photo: a large saturated, colourless blob on
  the face (skin highlights are small).

They are deny cues only: their absence proves nothing, so they veto but never confirm.

A moire cue (an isolated peak in the face's high-frequency spectrum) was tried and removed: it never fired on the
synthetic screens (the camera's blur and resampling smear the rendered pixel grid into the skin texture: 0.23-0.93
on phone and laptop replays, 0.23-0.84 on phone photos) while live clips reached 0.92, so no threshold separated
them, and tuning it to the project's own rendered grid would have measured the renderer,
not real displays. A display's texture is the texture classifier's job.
"""

from __future__ import annotations

import cv2
import numpy as np

OUTLINE_MARGIN = 1.6     # search for edges up to this many face widths/heights beyond the face box
OUTLINE_MIN_LENGTH = 0.7  # an edge counts when at least this long, in face heights (widths for top/bottom)


def _clip_box(box, shape, grow: float = 0.0):
    x, y, w, h = (float(v) for v in box)
    x0, y0 = x - grow * w, y - grow * h
    x1, y1 = x + w + grow * w, y + h + grow * h
    H, W = shape[:2]
    return int(max(0, x0)), int(max(0, y0)), int(min(W, x1)), int(min(H, y1))


def outline_score(frame_bgr: np.ndarray, box) -> float:
    """Fraction of the four sides (left, right, above, below the face) on which a long straight edge runs
    parallel to the face's side within ``OUTLINE_MARGIN`` face sizes: 0.75 or 1.0 means the face is framed."""
    x, y, w, h = (float(v) for v in box)
    x0, y0, x1, y1 = _clip_box(box, frame_bgr.shape, OUTLINE_MARGIN)
    roi = frame_bgr[y0:y1, x0:x1]
    if roi.size == 0 or w < 8 or h < 8:
        return 0.0
    scale = min(1.0, 160.0 / max(roi.shape[:2]))
    gray = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 50, 150)
    min_len = OUTLINE_MIN_LENGTH * min(w, h) * scale
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=int(max(10, min_len * 0.5)),
                            minLineLength=int(max(8, min_len)), maxLineGap=int(max(3, min_len * 0.1)))
    if lines is None:
        return 0.0
    # face box in ROI (scaled) coordinates
    fx0, fy0 = (x - x0) * scale, (y - y0) * scale
    fx1, fy1 = fx0 + w * scale, fy0 + h * scale
    sides = set()
    for lx0, ly0, lx1, ly1 in np.asarray(lines).reshape(-1, 4).astype(float):
        dx, dy = lx1 - lx0, ly1 - ly0
        angle = abs(np.degrees(np.arctan2(dy, dx))) % 180
        mx, my = (lx0 + lx1) / 2, (ly0 + ly1) / 2
        if angle > 60 and angle < 120:  # vertical-ish: beside the face, overlapping its height
            if min(ly0, ly1) < fy1 and max(ly0, ly1) > fy0:
                if mx < fx0 - 0.05 * w * scale:
                    sides.add("left")
                elif mx > fx1 + 0.05 * w * scale:
                    sides.add("right")
        elif angle < 30 or angle > 150:  # horizontal-ish: above or below, overlapping its width
            if min(lx0, lx1) < fx1 and max(lx0, lx1) > fx0:
                if my < fy0 - 0.05 * h * scale:
                    sides.add("top")
                elif my > fy1 + 0.05 * h * scale:
                    sides.add("bottom")
    return len(sides) / 4.0


def glare_score(frame_bgr: np.ndarray, box) -> float:
    """Area of the largest saturated colourless blob inside the face box, over the box area."""
    x0, y0, x1, y1 = _clip_box(box, frame_bgr.shape)
    roi = frame_bgr[y0:y1, x0:x1]
    if roi.size == 0:
        return 0.0
    hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV)
    mask = ((hsv[..., 2] >= 245) & (hsv[..., 1] <= 40)).astype(np.uint8)
    if not mask.any():
        return 0.0
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    largest = stats[1:, cv2.CC_STAT_AREA].max() if count > 1 else 0
    return float(largest) / float(mask.size)
