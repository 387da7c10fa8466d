"""Cut the face out of the image the way the embedding model saw faces during training.

The FaceNet weights were trained on MTCNN crops: the face box plus a margin, resized to 160 x 160, upright as
photographed. YuNet's box is not MTCNN's box, so instead of copying a box we place the five landmarks where
they fall, on average, in such a crop (``TEMPLATE_160``) with a least-squares similarity transform.
Experiments on LFW DevTrain (``scripts/bench_accuracy.py``) chose the zoom and whether to undo head roll.
"""

from __future__ import annotations

import cv2
import numpy as np

# Mean landmark positions (right eye, left eye, nose, right mouth, left mouth) in a 160 x 160 crop made like the
# training data: detector box plus a 32-pixel margin around a ~110-pixel LFW face, resized to 160.
# Measured on the 3,443 LFW DevTrain images (YuNet box as the stand-in for MTCNN's), made symmetric.
TEMPLATE_160 = np.array([
    [57.70, 63.60],
    [102.30, 63.60],
    [80.00, 88.90],
    [61.10, 108.60],
    [98.90, 108.60],
], dtype=np.float32)

# Chosen on LFW DevTrain with the int8 model (scripts/bench_accuracy.py --sweep): a tighter crop than the
# training margin (zoom 1.25) and roll correction. Best-threshold accuracy 99.68% and TAR 81% at FAR 1e-5,
# against 99.45% / 71% for the detector box + 20% margin. Zoom 1.2-1.4 were within one pair of each other.
ALIGN_ZOOM = 1.25
ALIGN_ROTATE = True


def similarity_transform(src: np.ndarray, dst: np.ndarray, *, rotate: bool = True) -> np.ndarray:
    """The 2x3 matrix of the least-squares similarity (scale, translation and, if ``rotate``, rotation)
    taking points ``src`` (N, 2) onto ``dst`` (N, 2) (Umeyama's closed form)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    src_var = (s ** 2).sum()
    if src_var <= 1e-12:
        raise ValueError("landmarks are degenerate (all in one point)")
    if rotate:
        a = (s * d).sum()                                   # sum of dot products
        b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()   # sum of cross products
        scale = np.hypot(a, b) / src_var
        angle = np.arctan2(b, a)
        cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    else:
        scale = np.sqrt((d ** 2).sum() / src_var)
        cos, sin = scale, 0.0
    m = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    m[:, 2] = dst_mean - m[:, :2] @ src_mean
    return m


def template(size: int = 160, *, zoom: float = 1.0) -> np.ndarray:
    """Landmark targets for a ``size`` crop; ``zoom`` > 1 makes the face larger (less margin)."""
    t = (TEMPLATE_160 - 80.0) * zoom + 80.0
    return t * (size / 160.0)


def align_face(image: np.ndarray, landmarks: np.ndarray, *, size: int = 160, zoom: float = ALIGN_ZOOM,
               rotate: bool = ALIGN_ROTATE) -> np.ndarray:
    """The aligned ``size`` x ``size`` crop (same channel order as ``image``) for one face's landmarks."""
    m = similarity_transform(landmarks, template(size, zoom=zoom), rotate=rotate)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 0.5:
        # Shrinking a face by more than 2x with bilinear sampling aliases; pre-blur like INTER_AREA would.
        sigma = 0.5 / scale * 0.5
        x0, y0, x1, y1 = _source_rect(m, size, image.shape)
        roi = image[y0:y1, x0:x1]
        roi = cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma)
        m = m.copy()
        m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
        image = roi
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_box(image: np.ndarray, box, *, size: int = 160, margin: float = 0.2) -> np.ndarray:
    """A square crop around a detector box plus ``margin`` (fraction of the box side), resized to ``size``.

    The plain baseline that landmark alignment is measured against.
    """
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    side = max(w, h) * (1.0 + margin)
    scale = size / side
    m = np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _source_rect(m: np.ndarray, size: int, shape) -> tuple[int, int, int, int]:
    """The integer rectangle of the source image that the crop samples (with a small border)."""
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
    h, w = shape[:2]
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - 4, 0, w - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - 4, 0, h - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + 4, x0 + 1, w))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + 4, y0 + 1, h))
    return x0, y0, x1, y1
