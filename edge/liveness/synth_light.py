"""Frames lit by the door's illuminator, rendered from real photographs, for tests of the illumination cue.

A real frame is the face under the room's light (the "unlit" frame). The LED beside the camera adds, at every
point of whatever is in front of it, light in proportion to the local albedo (the frame itself), to how squarely
the surface faces the LED (Lambert: n . l) and to the inverse square of its distance. What differs between the
presentations is the surface:

- ``live``: a smooth face-like height field placed on the face's five landmarks (an ellipsoid for the head, a
  ridge and tip for the nose, hollows for the eye sockets, raised cheeks), lit by a point light at the camera;
- ``print``: a flat sheet facing the camera: every pixel scaled by the same factor;
- ``bent-print``: the sheet bent round a vertical axis (a cylinder), lit the same way;
- ``screen``: a display emits its own picture and reflects almost none of the LED: a tiny constant offset.

Camera noise (Gaussian, ``noise`` grey levels) is added to every frame, lit or not.
"""

from __future__ import annotations

import numpy as np

KINDS = ("live", "print", "bent-print", "screen")
LIGHT_DISTANCE = 3.0     # the LED's distance from the face, in face widths (a 15 cm face at 45 cm)


def face_height(shape, box, landmarks) -> np.ndarray:
    """A face-like height field (towards the camera, in face widths) over an image of ``shape``: 0 off the face.
    ``landmarks``: YuNet's five points (eyes, nose tip, mouth corners)."""
    H, W = shape[:2]
    x, y, w, h = (float(v) for v in box)
    pts = np.asarray(landmarks, np.float64)
    eyes, nose, mouth = pts[0:2], pts[2], pts[3:5]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    cx = float(eyes[:, 0].mean() + mouth[:, 0].mean()) / 2
    cy = float(eyes[:, 1].mean() + mouth[:, 1].mean()) / 2
    a, b = 0.55 * w, 0.7 * h
    head = 1 - ((xx - cx) / a) ** 2 - ((yy - cy) / b) ** 2
    z = 0.45 * np.sqrt(np.clip(head, 0, None))

    def bump(px, py, sx, sy, height):
        return height * np.exp(-0.5 * (((xx - px) / sx) ** 2 + ((yy - py) / sy) ** 2))

    eye_span = float(np.linalg.norm(eyes[1] - eyes[0]))
    bridge_y = float(eyes[:, 1].mean())
    # nose: a ridge from between the eyes to the tip, the tip itself
    for t in np.linspace(0, 1, 8):
        z += bump(eyes[:, 0].mean() + t * (nose[0] - eyes[:, 0].mean()), bridge_y + t * (nose[1] - bridge_y),
                  0.09 * eye_span, 0.12 * eye_span, 0.035 + 0.07 * t)
    z += bump(nose[0], nose[1], 0.18 * eye_span, 0.15 * eye_span, 0.12)
    for eye in eyes:                                    # eye sockets
        z -= bump(eye[0], eye[1], 0.28 * eye_span, 0.2 * eye_span, 0.08)
    for side in (-1, 1):                                # cheeks
        z += bump(nose[0] + side * 0.55 * eye_span, nose[1] + 0.1 * eye_span, 0.3 * eye_span, 0.3 * eye_span,
                  0.05)
    z -= bump((mouth[0, 0] + mouth[1, 0]) / 2, (nose[1] + mouth[:, 1].mean()) / 2, 0.35 * eye_span,
              0.1 * eye_span, 0.03)                     # under the nose
    return np.where(head > 0, z, 0.0) * w               # in pixels (the face width is w pixels)


def shading(z: np.ndarray, box, *, distance: float = LIGHT_DISTANCE) -> np.ndarray:
    """The LED's irradiance at each pixel of a surface of height ``z`` (pixels), relative to a flat sheet
    facing the camera at the face's distance: Lambert times inverse square, light at the camera."""
    x, y, w, h = (float(v) for v in box)
    d = distance * w
    gy, gx = np.gradient(z)
    H, W = z.shape
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    lx, ly, lz = (x + w / 2) - xx, (y + h / 2) - yy, d - z       # towards the LED from each point
    norm_l = np.sqrt(lx ** 2 + ly ** 2 + lz ** 2)
    normal = np.sqrt(gx ** 2 + gy ** 2 + 1)
    lambert = np.clip((-gx * lx - gy * ly + lz) / (normal * norm_l), 0, None)
    return lambert * (d / norm_l) ** 2


def bent_sheet(shape, box, *, bend: float = 0.35) -> np.ndarray:
    """The height of a sheet bent round a vertical axis through the face (a cylinder of radius w / bend)."""
    H, W = shape[:2]
    x, _y, w, _h = (float(v) for v in box)
    radius = w / max(bend, 1e-6)
    dx = np.arange(W, dtype=np.float64) - (x + w / 2)
    z = np.sqrt(np.clip(radius ** 2 - dx ** 2, 0, None)) - radius
    return np.broadcast_to(z, (H, W)).copy()


def gain_map(shape, kind: str, *, box, landmarks) -> np.ndarray | None:
    """The LED's relative irradiance over an image of ``shape`` for presentation ``kind`` (None for a screen,
    which only adds a constant). Compute it once and move it with the face (``cv2.warpAffine``) for a sequence."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "live":
        return shading(face_height(shape, box, landmarks), box)
    if kind == "bent-print":
        return shading(bent_sheet(shape, box), box)
    if kind == "print":
        return np.ones(shape[:2])
    return None


def render(frame_bgr: np.ndarray, *, lit: bool, gain: np.ndarray | None, strength: float = 0.3,
           noise: float = 2.0, rng: np.random.Generator) -> np.ndarray:
    """``frame_bgr`` as the camera sees it with the LED ``lit`` or not, for the presentation whose
    :func:`gain_map` is ``gain`` (None: a screen). ``strength``: the LED's share on a flat sheet facing it."""
    base = frame_bgr.astype(np.float32)
    if lit:
        if gain is None:                             # a screen: a little of the LED reflected by the glass
            base += 0.01 * strength * 255
        else:
            base *= 1 + strength * gain[..., None].astype(np.float32)
    base += rng.standard_normal(base.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)
