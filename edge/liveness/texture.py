"""Texture cue: does the skin of the face look like a camera saw skin, or a print or a screen showing it?

Why: a replayed video blinks, talks and turns for real, so motion cues accept it; what remains different is the
surface - paper grain, a display's pixels and colour rendering, a copy's lost fine detail. The cue is the
face-anti-spoofing literature's colour-texture baseline (Boulkenafet et al. 2015): uniform LBP(8, 1)
histograms of the aligned face crop in the Y, Cr, Cb, H, S and V channels, plus a coarse-scale Y histogram, fed
to a logistic regression (whole-crop histograms: a 2 x 2 grid generalised worse to new people, in
cross-validation on the training split and on the held-out split, which this one choice was made after
looking at). The project trains it itself (``scripts/train_texture.py``, on
``../shared/liveness`` and ``edge.liveness.synth`` attacks; the exact data list is
``models/texture_training_list.txt``); the weights are ``models/texture_lbp.npz`` (numpy only at run time).

:func:`texture_score` is a pure function of a frame, the face box and YuNet's five landmarks: the probability
that the face is a presentation attack (0 = looks live), and :class:`TextureTrack` the veto rule over a track.
Measured across datasets it does not generalise to new people well enough to veto at the door (the score
follows the person more than the medium; see docs/liveness.md), so the judge does not use it yet.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..recognition import models

log = logging.getLogger(__name__)

TEXTURE_MODEL_ID = "texture"
TEXTURE_FILE = "texture_lbp.npz"
FORMAT = 1
CROP = 64            # side of the aligned face crop, pixels
CROP_SCALE = 0.9     # the crop's side over the face box's longer side: skin, not background or a bezel
GRID = 1             # histograms over GRID x GRID cells of each channel (1: the whole crop)
COARSE = 32          # the Y channel again at this size (a copy's missing fine detail)
N_BINS = 59          # uniform LBP(8, 1): 58 uniform patterns and one bin for every other code


def _uniform_table() -> np.ndarray:
    """Map each 8-bit LBP code to its uniform-pattern bin (at most two 0/1 transitions round the circle)."""
    table = np.full(256, N_BINS - 1, np.int16)
    k = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[code] = k
            k += 1
    assert k == N_BINS - 1
    return table


UNIFORM = _uniform_table().astype(np.uint8)
# the 8 neighbours of LBP(8, 1) as (dy, dx), in circular order
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
N_FEATURES = 6 * GRID * GRID * N_BINS + N_BINS


def face_crop(frame_bgr: np.ndarray, box, landmarks) -> np.ndarray:
    """The face as a ``CROP`` x ``CROP`` BGR crop: a square of ``CROP_SCALE`` times the box's longer side round
    its centre, turned so the eyes (YuNet landmarks 0 and 1) are level, shrunk with area averaging (no
    aliasing, so a face's texture does not depend on how near it stands)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * CROP_SCALE
    if side < 8:
        raise ValueError("the face box is too small for a texture crop")
    cx, cy = x + w / 2, y + h / 2
    eyes = np.asarray(landmarks, np.float64)[:2]
    dx, dy = eyes[1] - eyes[0]
    angle = float(np.degrees(np.arctan2(dy, dx)))
    # 1. cut a region holding the turned square (its half-diagonal) and shrink it with area averaging
    half = side * 0.75
    H, W = frame_bgr.shape[:2]
    x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    x1, y1 = int(min(W, np.ceil(cx + half))), int(min(H, np.ceil(cy + half)))
    region = frame_bgr[y0:y1, x0:x1]
    if region.shape[0] < 2 or region.shape[1] < 2:
        raise ValueError("the face box is outside the frame")
    factor = min(1.0, CROP / side)
    if factor < 1.0:
        size = (max(1, int(round(region.shape[1] * factor))), max(1, int(round(region.shape[0] * factor))))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    else:
        fx = fy = 1.0
    centre = ((cx - x0) * fx, (cy - y0) * fy)
    # 2. turn and scale the rest of the way with a linear warp
    matrix = np.asarray(cv2.getRotationMatrix2D(centre, angle, CROP / (side * fx)), np.float64)
    matrix[:, 2] += np.array([CROP / 2 - centre[0], CROP / 2 - centre[1]])
    return np.asarray(cv2.warpAffine(region, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE))


def lbp_codes(channels: np.ndarray) -> np.ndarray:
    """Uniform LBP(8, 1) bin (0..58) of every inner pixel of each channel: (h, w, c) -> (h-2, w-2, c); a 2-D
    array is one channel."""
    c = np.asarray(channels, np.uint8)
    if c.ndim == 2:
        c = c[..., None]
    centre = c[1:-1, 1:-1]
    h, w = centre.shape[:2]
    code = np.zeros(centre.shape, np.uint8)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        code |= (c[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] >= centre).view(np.uint8) << np.uint8(bit)
    return UNIFORM[code]


def _histograms(codes: np.ndarray, grid: int) -> np.ndarray:
    """Normalised LBP histograms of ``grid`` x ``grid`` cells of each channel of (h, w, c) codes, concatenated
    channel by channel."""
    h, w, n = codes.shape
    rows = np.minimum(np.arange(h) * grid // h, grid - 1)
    cols = np.minimum(np.arange(w) * grid // w, grid - 1)
    cell = (rows[:, None] * grid + cols[None, :])[..., None] + np.arange(n) * grid * grid
    counts = np.bincount((cell * N_BINS + codes).ravel(), minlength=n * grid * grid * N_BINS).astype(np.float32)
    counts = counts.reshape(n * grid * grid, N_BINS)
    counts /= np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return counts.ravel()


def features(crop_bgr: np.ndarray) -> np.ndarray:
    """The feature vector (``N_FEATURES`` float32) of an aligned ``CROP`` x ``CROP`` face crop: square roots of
    the LBP histograms (the Hellinger map, so a linear model compares distributions sensibly)."""
    if crop_bgr.shape != (CROP, CROP, 3) or crop_bgr.dtype != np.uint8:
        raise ValueError(f"a texture crop is a {CROP}x{CROP} BGR uint8 image, not {crop_bgr.shape} {crop_bgr.dtype}")
    ycrcb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2YCrCb)
    hsv = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV)
    fine = _histograms(lbp_codes(np.concatenate([ycrcb, hsv], axis=2)), GRID)
    coarse = cv2.resize(ycrcb[..., 0], (COARSE, COARSE), interpolation=cv2.INTER_AREA)
    return np.sqrt(np.concatenate([fine, _histograms(lbp_codes(coarse), 1)])).astype(np.float32)


@dataclass(frozen=True)
class TextureModel:
    """A linear model over :func:`features`: ``p(attack) = sigmoid(((f - mean) / scale) . weights + bias)``;
    ``threshold`` is the track-level veto (mean per-frame probability) chosen on the training split."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    min_looks: int

    def logit(self, feats: np.ndarray) -> np.ndarray:
        return ((np.asarray(feats, np.float32) - self.mean) / self.scale) @ self.weights + np.float32(self.bias)

    def probability(self, feats: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(feats), -30, 30)))

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write the model as an uncompressed ``.npz`` (same bytes for the same numbers)."""
        arrays = {"format": np.int32(FORMAT), "weights": self.weights.astype(np.float32),
                  "bias": np.float32(self.bias), "mean": self.mean.astype(np.float32),
                  "scale": self.scale.astype(np.float32), "threshold": np.float32(self.threshold),
                  "min_looks": np.int32(self.min_looks), "n_features": np.int32(N_FEATURES)}
        arrays.update(extra)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # fixed timestamps: reproducible bytes
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w") as fh:
                    np.lib.format.write_array(fh, np.asarray(arrays[name]), allow_pickle=False)


def load_texture_model(path: str | os.PathLike) -> TextureModel:
    """Read a texture model file; ModelError (naming the file and the fix) if it is missing or unreadable."""
    path = Path(path)
    hint = f"restore {TEXTURE_FILE} from git and run `edge-face models build` (or retrain: scripts/train_texture.py)"
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt = int(data["format"])
            model = TextureModel(weights=np.asarray(data["weights"], np.float32), bias=float(data["bias"]),
                                 mean=np.asarray(data["mean"], np.float32),
                                 scale=np.asarray(data["scale"], np.float32),
                                 threshold=float(data["threshold"]), min_looks=int(data["min_looks"]))
    except FileNotFoundError:
        raise ModelError(f"the texture model {path} is missing; {hint}") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"the texture model {path} is unreadable or corrupt ({exc}); {hint}") from None
    if fmt != FORMAT or any(a.shape != (N_FEATURES,) for a in (model.weights, model.mean, model.scale)) \
            or not np.all(np.isfinite(model.weights)) or not np.all(model.scale > 0):
        raise ModelError(f"the texture model {path} does not fit this version of edge-face (format {fmt}, "
                         f"{model.weights.shape} weights, {N_FEATURES} expected); {hint}")
    return model


def load_from_manifest(models_dir: str | os.PathLike) -> TextureModel:
    """The texture model listed in ``models_dir``'s manifest, after its sha256 matched."""
    manifest = models.load_manifest(models_dir)
    if TEXTURE_MODEL_ID not in models.model_ids(manifest):
        raise ModelError(f"the texture model ({TEXTURE_FILE}) is not in {Path(models_dir) / 'manifest.json'}; "
                         f"{models.REBUILD_HINT}")
    return load_texture_model(models.verified_path(models_dir, models.model_entry(manifest, TEXTURE_MODEL_ID)))


def texture_score(model: TextureModel, frame_bgr: np.ndarray, box, landmarks) -> float:
    """Probability that the face at ``box`` with YuNet's five ``landmarks`` is a print or a screen (0 = live
    skin); 0.0 (no sign) when the box is too small or outside the frame."""
    try:
        crop = face_crop(frame_bgr, box, landmarks)
    except ValueError:
        return 0.0
    return float(model.probability(features(crop)))


class TextureTrack:
    """The track-level rule: the mean of the per-frame probabilities so far; ``vetoed`` once at least
    ``min_looks`` frames were scored and that mean reached ``threshold`` (default: the model's, chosen on the
    training split); it then stays vetoed."""

    def __init__(self, model: TextureModel, threshold: float | None = None):
        self.model = model
        self.threshold = model.threshold if threshold is None else float(threshold)
        self.looks = 0
        self.total = 0.0
        self.vetoed = False

    def add(self, probability: float) -> bool:
        self.looks += 1
        self.total += float(probability)
        if self.looks >= self.model.min_looks and self.mean >= self.threshold:
            self.vetoed = True
        return self.vetoed

    @property
    def mean(self) -> float:
        return self.total / self.looks if self.looks else 0.0
