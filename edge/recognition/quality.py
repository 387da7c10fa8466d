"""Is this face good enough to become a template? Size, sharpness and brightness, in plain words.

A template is compared with every visitor for as long as it is enrolled, so a blurred, dark or tiny face
makes a door that fails its owner (and, being less distinctive, accepts strangers more easily). The checks run
on the aligned crop, so they measure the face and not the background; the limits were set from the real
photographs in ``../shared/faces`` (sharp ones pass, the same faces blurred or darkened fail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MIN_FACE_PX = 80            # shorter side of the detector box, in pixels of the original image
MIN_SHARPNESS = 400.0       # variance of the Laplacian of the aligned 160 x 160 grey crop
MIN_BRIGHTNESS = 50.0       # mean grey level (0-255) of the middle of the face
MAX_BRIGHTNESS = 215.0


@dataclass(frozen=True)
class Quality:
    """The measurements and, when ``ok`` is false, the reasons in words a person can act on."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    size: float = 0.0
    sharpness: float = 0.0
    brightness: float = 0.0


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop: high for fine detail, low for blur."""
    grey = _grey(crop)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=3).var())


def brightness(crop: np.ndarray) -> float:
    """Mean grey level of the central half of the crop (the face itself, not hair or background)."""
    grey = _grey(crop)
    h, w = grey.shape
    return float(grey[h // 4: h - h // 4, w // 4: w - w // 4].mean())


def assess(crop: np.ndarray, face_size: float, *, min_face_px: float = MIN_FACE_PX,
           min_sharpness: float = MIN_SHARPNESS, min_brightness: float = MIN_BRIGHTNESS,
           max_brightness: float = MAX_BRIGHTNESS) -> Quality:
    """Quality of one aligned face crop (BGR) whose detector box has ``face_size`` pixels on its shorter side."""
    sharp, bright = sharpness(crop), brightness(crop)
    reasons = []
    if face_size < min_face_px:
        reasons.append(f"the face is too small ({face_size:.0f} px; at least {min_face_px:.0f} px): "
                       f"move closer or use a larger photograph")
    if sharp < min_sharpness:
        reasons.append(f"the face is too blurry (sharpness {sharp:.0f}; at least {min_sharpness:.0f}): "
                       f"hold the camera still and focus on the face")
    if bright < min_brightness:
        reasons.append("the photograph is too dark: add light in front of the face")
    elif bright > max_brightness:
        reasons.append("the photograph is too bright (overexposed): avoid direct light or flash")
    return Quality(ok=not reasons, reasons=reasons, size=float(face_size), sharpness=sharp, brightness=bright)


def _grey(crop: np.ndarray) -> np.ndarray:
    return crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
