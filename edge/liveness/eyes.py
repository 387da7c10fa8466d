"""Eyelid opening from the MediaPipe iris model, on both eyes of a face mesh.

Why not the mesh's own eyelid points: the 468-point mesh follows its face prior and barely closes on a real blink
(its eye aspect ratio dips by 10-20 %, about as much as it jitters on a bent print). The iris model looks at a
64x64 crop of each eye and places 16 eyelid points precisely, so a blink drops its opening by half or more.
The model was trained on the image-left eye; the other eye is mirrored in, as MediaPipe does. The same invoke
also places the iris: its centre against the eye's corners is where the eye looks (:mod:`edge.liveness.gaze`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..recognition import models

IRIS_MODEL_ID = "iris"
INPUT_SIZE = 64
ROI_SCALE = 2.3
EYE_ENDS = ((33, 133), (362, 263))  # mesh corners of the image-left and image-right eye (outer/inner order)
# Eye contour indices of the model's output: 0..8 lower lid from corner to corner, 9..15 upper lid between them.
UPPER = (10, 11, 12, 13, 14)
LOWER = (2, 3, 4, 5, 6)


def eye_transform(corner_a: np.ndarray, corner_b: np.ndarray, *, mirror: bool) -> np.ndarray:
    """2x3 affine matrix from the frame to the 64x64 eye crop: level, ``ROI_SCALE`` times the eye width, and
    mirrored left-right when ``mirror`` (so the other eye looks like the one the model was trained on)."""
    a, b = np.asarray(corner_a, np.float64), np.asarray(corner_b, np.float64)
    centre = (a + b) / 2
    dx, dy = b - a
    side = max(float(np.hypot(dx, dy)) * ROI_SCALE, 1.0)
    matrix = np.asarray(cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])),
                                                float(np.degrees(np.arctan2(dy, dx))), INPUT_SIZE / side), np.float64)
    matrix[:, 2] = matrix[:, 2] + np.array([INPUT_SIZE / 2, INPUT_SIZE / 2]) - centre
    if mirror:
        matrix = np.array([[-1.0, 0.0, INPUT_SIZE], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    return matrix


def lid_opening(contour: np.ndarray) -> float:
    """Mean gap between the upper and lower lid over the eye's width (about 0.3 open, under 0.1 closed)."""
    gaps = np.linalg.norm(contour[list(UPPER)] - contour[list(LOWER)], axis=1)
    width = np.linalg.norm(contour[8] - contour[0])
    return float(gaps.mean() / max(width, 1e-6))


class EyeReading(NamedTuple):
    """Lid openings of the image-left and image-right eye (gap over width) and the gaze: the iris centre's offset
    from the middle of the eye corners over the eye width, (x, y) in frame directions, mean of both eyes."""

    left: float
    right: float
    gaze: tuple[float, float]


def iris_offset(contour: np.ndarray, iris_centre: np.ndarray) -> np.ndarray:
    """The iris centre's offset from the midpoint of the eye corners (contour points 0 and 8) over the eye width."""
    corner_a, corner_b = contour[0], contour[8]
    width = max(float(np.linalg.norm(corner_b - corner_a)), 1e-6)
    return (np.asarray(iris_centre, np.float64) - (corner_a + corner_b) / 2) / width


def read_eyes(interpreter, frame_bgr: np.ndarray, mesh_points: np.ndarray) -> EyeReading:
    """Lid openings and gaze of both eyes (both crops in one batch of two: one invoke)."""
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != (2, INPUT_SIZE, INPUT_SIZE, 3):
        interpreter.resize_tensor_input(inp["index"], [2, INPUT_SIZE, INPUT_SIZE, 3], strict=False)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    outputs = interpreter.get_output_details()
    eye_out = next(d for d in outputs if tuple(d["shape"])[-1] % 213 == 0)
    iris_out = next(d for d in outputs if tuple(d["shape"])[-1] % 15 == 0)
    crops = np.empty((2, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    for k, ((i, j), mirror) in enumerate(zip(EYE_ENDS, (False, True))):
        matrix = eye_transform(mesh_points[i], mesh_points[j], mirror=mirror)
        crops[k] = cv2.warpAffine(frame_bgr, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    interpreter.set_tensor(inp["index"], crops[..., ::-1].astype(np.float32) * np.float32(1.0 / 255.0))
    interpreter.invoke()
    contours = interpreter.get_tensor(eye_out["index"]).reshape(2, 71, 3)[:, :, :2]
    irises = interpreter.get_tensor(iris_out["index"]).reshape(2, 5, 3)[:, 0, :2]
    # ratios: the same in the crop as in the frame; the crops are level, the second one mirrored back
    left, right = iris_offset(contours[0], irises[0]), iris_offset(contours[1], irises[1]) * np.array([-1.0, 1.0])
    gaze = (left + right) / 2
    return EyeReading(lid_opening(contours[0]), lid_opening(contours[1]), (float(gaze[0]), float(gaze[1])))


def run_eyes(interpreter, frame_bgr: np.ndarray, mesh_points: np.ndarray) -> tuple[float, float]:
    """Lid opening of the image-left and image-right eye."""
    reading = read_eyes(interpreter, frame_bgr, mesh_points)
    return reading.left, reading.right


class EyeModel:
    """The hash-checked iris model: ``EyeModel(models_dir=...)(frame, mesh_points) -> (left, right)``."""

    def __init__(self, *, models_dir: str | Path, num_threads: int = 2):
        manifest = models.load_manifest(models_dir)
        path = models.verified_path(models_dir, models.model_entry(manifest, IRIS_MODEL_ID))
        self._interpreter = models.make_interpreter(path, num_threads)

    def __call__(self, frame_bgr: np.ndarray, mesh_points: np.ndarray) -> tuple[float, float]:
        return run_eyes(self._interpreter, frame_bgr, mesh_points)

    def read(self, frame_bgr: np.ndarray, mesh_points: np.ndarray) -> EyeReading:
        return read_eyes(self._interpreter, frame_bgr, mesh_points)

    def close(self) -> None:
        self._interpreter = None
