"""Find faces and their five landmarks with YuNet (``cv2.FaceDetectorYN``).

YuNet is small (230 kB), fast on a Pi and returns the two eyes, the nose tip and the two mouth corners that
alignment needs. Large images are detected on a downscaled copy (a 1280-pixel side still finds faces of 20
pixels) and the coordinates mapped back, so cropping uses the full-resolution pixels.

A ``cv2.FaceDetectorYN`` object is not thread-safe; :class:`~edge.recognition.engine.FaceEngine` holds a lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from .images import downscale


@dataclass(frozen=True)
class Detection:
    """One face: box (x, y, w, h) and landmarks (5, 2) in the coordinates of the original image."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def size(self) -> float:
        """The shorter side of the box in pixels: what 'the face is too small' refers to."""
        return float(min(self.box[2], self.box[3]))


def create_detector(model_path: str | Path, *, score_threshold: float = 0.8, nms_threshold: float = 0.3,
                    top_k: int = 5000) -> cv2.FaceDetectorYN:
    """A YuNet detector from its ONNX file; a ModelError if OpenCV cannot load it."""
    # OpenCV 5 warns on every load that its new graph engine ignores target selection: noise on the console.
    # OpenCV 4 (Bookworm keeps opencv-python-headless < 4.11) neither warns nor has cv2.utils.logging.
    opencv_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = opencv_logging.getLogLevel() if opencv_logging else None
    if opencv_logging:
        opencv_logging.setLogLevel(opencv_logging.LOG_LEVEL_ERROR)
    try:
        return cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), float(score_threshold),
                                         float(nms_threshold), int(top_k))
    except cv2.error as exc:
        raise ModelError(f"{model_path}: OpenCV cannot load the face detector ({_first_line(exc)}); "
                         f"run `edge-face models build` to restore it") from None
    finally:
        if opencv_logging:
            opencv_logging.setLogLevel(previous)


# YuNet scores a face that fills a large photograph (over ~500 px) low; such photographs get a second look at
# this size when the first finds nothing. Measured: 2 of 61 deepface_unit photographs need it.
RETRY_MAX_SIDE = 640


def detect_faces(detector: cv2.FaceDetectorYN, image: np.ndarray, *, max_side: int = 1280) -> list[Detection]:
    """All faces above the detector's score threshold, largest first."""
    found = _detect_at(detector, image, max_side)
    if not found and max(image.shape[:2]) > RETRY_MAX_SIDE and max_side > RETRY_MAX_SIDE:
        found = _detect_at(detector, image, RETRY_MAX_SIDE)
    return found


def _detect_at(detector: cv2.FaceDetectorYN, image: np.ndarray, max_side: int) -> list[Detection]:
    small, scale = downscale(image, max_side)
    h, w = small.shape[:2]
    detector.setInputSize((w, h))
    _, rows = detector.detect(small)
    if rows is None:
        return []
    found = []
    for row in rows:
        x, y, w, h = (float(v) * scale for v in row[:4])
        box = (x, y, w, h)
        # YuNet's order: right eye, left eye, nose, right and left mouth corner (the person's right).
        landmarks = (row[4:14].reshape(5, 2).astype(np.float32)) * np.float32(scale)
        found.append(Detection(box=box, landmarks=landmarks, score=float(row[14])))
    found.sort(key=lambda d: d.box[2] * d.box[3], reverse=True)
    return found


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__
