"""Synthetic presentation attacks, rendered from real frames, for tests and ``scripts/bench_liveness.py``.

No video of a real print or screen attack is available, so attacks are made the way an attacker would present
them to the door camera: a source image (or each frame of a source clip) is put on a sheet in 3-D - moved,
tilted and optionally bent round a vertical axis - and projected back with a pinhole camera, over a background.
The medium decides the border and the artefacts:

- ``print``: white paper margin, matte;
- ``phone`` / ``laptop``: a black bezel, a specular glare band sliding over the glass, a moire grid (the
  display's pixel lattice beating with the camera's), a slight blue cast and lifted blacks.

Families (what the benchmark reports APCER for): ``print-moving`` (a still frame on a moving, bending sheet),
``phone-photo`` (a still frame on a phone moved by hand), ``laptop-replay`` / ``phone-replay`` (a live clip
played on the screen, blinks and head turns included) and ``bare-replay`` (a live clip replayed with the screen
filling the view: no border, no glare, no moire; only the challenge can refuse it).

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FAMILIES = ("print-moving", "phone-photo", "laptop-replay", "phone-replay", "bare-replay")


@dataclass(frozen=True)
class Medium:
    border: float          # border width as a fraction of the source's width
    border_colour: tuple   # BGR
    glare: float           # peak added brightness of the glare band (0 = none)
    moire: float           # amplitude of the moire grid in grey levels (0 = none)
    screen: bool           # blue cast and lifted blacks of an emissive display


MEDIA = {
    "print": Medium(border=0.08, border_colour=(235, 238, 240), glare=0.0, moire=0.0, screen=False),
    "phone": Medium(border=0.06, border_colour=(18, 18, 20), glare=70.0, moire=9.0, screen=True),
    "laptop": Medium(border=0.04, border_colour=(30, 30, 32), glare=45.0, moire=7.0, screen=True),
    "bare": Medium(border=0.0, border_colour=(0, 0, 0), glare=0.0, moire=0.0, screen=False),
}


def portrait(image_bgr: np.ndarray, box, *, margin: float = 0.9) -> np.ndarray:
    """The part of a photograph an attacker would print or show: the face box grown by ``margin`` of its size on
    every side (clipped to the image), 4:3 portrait."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    half_h = h * (0.5 + margin)
    half_w = half_h * 0.75
    H, W = image_bgr.shape[:2]
    x0, x1 = int(max(0, cx - half_w)), int(min(W, cx + half_w))
    y0, y1 = int(max(0, cy - half_h)), int(min(H, cy + half_h))
    return np.ascontiguousarray(image_bgr[y0:y1, x0:x1])


def dress(source_bgr: np.ndarray, medium: Medium, *, phase: float = 0.0) -> np.ndarray:
    """The source as it looks on the medium, border included (before it is placed in the scene)."""
    img = source_bgr.astype(np.float32)
    h, w = img.shape[:2]
    if medium.screen:
        img = 20.0 + img * (225.0 / 255.0)                      # lifted blacks
        img[..., 0] *= 1.06                                      # blue cast
        img[..., 2] *= 0.95
    if medium.moire:
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        grid = np.sin(2 * np.pi * (xx * 0.31 + yy * 0.07)) * np.sin(2 * np.pi * (yy * 0.29 - xx * 0.05))
        img += medium.moire * grid[..., None]
    if medium.glare:
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        centre = (0.2 + 0.6 * ((phase * 0.37) % 1.0)) * w
        band = np.exp(-((xx - centre + 0.4 * yy) / (0.12 * w)) ** 2)
        img += medium.glare * band[..., None]
    dressed = np.clip(img, 0, 255).astype(np.uint8)
    b = int(round(medium.border * w))
    if b:
        dressed = np.asarray(cv2.copyMakeBorder(dressed, b, b, b, b, cv2.BORDER_CONSTANT,
                                                value=medium.border_colour))
    return dressed


def project(sheet_bgr: np.ndarray, out_size: tuple[int, int], background: np.ndarray, *, yaw: float, pitch: float,
            roll: float, bend: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """The sheet seen by a pinhole camera (focal length = output width): rotated by yaw/pitch/roll (degrees),
    bent round a vertical axis (``bend`` = sagitta over half-width, 0 = flat), its width ``scale`` times the
    output width, its centre shifted by ``shift`` (fractions of the output size)."""
    W, H = out_size
    sh, sw = sheet_bgr.shape[:2]
    f = float(W)
    half_w = scale * W / 2.0
    half_h = half_w * sh / sw
    depth = f * 1.0
    # sample the sheet on a grid, compute each sample's camera position, then splat via a dense remap:
    # it is easier to invert: for each output pixel, intersect... here we forward-map a mesh and use remap
    # from a triangulated grid (fine grid, so piecewise-affine is exact enough).
    strips = 16 if bend else 1
    xs = np.linspace(-1.0, 1.0, strips + 1)
    corners = np.array([[x, y] for x in xs for y in (-1.0, 1.0)])  # (2*(strips+1), 2) in [-1, 1]
    X = corners[:, 0] * half_w
    Y = corners[:, 1] * half_h
    Z = -bend * half_w * (1.0 - corners[:, 0] ** 2)  # the middle nearer the camera, as a bent sheet is held
    a, b, c = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    cam = np.stack([X, Y, Z], -1) @ (rz @ ry @ rx).T + np.array([shift[0] * W, shift[1] * H, f])
    uv = np.stack([f * cam[:, 0] / cam[:, 2] + W / 2, f * cam[:, 1] / cam[:, 2] + H / 2], -1).astype(np.float32)
    src = np.stack([(corners[:, 0] + 1) / 2 * sw, (corners[:, 1] + 1) / 2 * sh], -1).astype(np.float32)
    out = background.copy()
    for i in range(strips):
        k = [2 * i, 2 * i + 2, 2 * i + 3, 2 * i + 1]  # top-left, top-right, bottom-right, bottom-left
        dst = uv[k]
        lo, hi = dst.min(0), dst.max(0)
        x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 1, W), min(int(np.ceil(hi[1])) + 1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        corner = np.array([x0, y0], np.float32)
        m = cv2.getPerspectiveTransform(src[k], (dst - corner).astype(np.float32))
        size = (x1 - x0, y1 - y0)
        patch = cv2.warpPerspective(sheet_bgr, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = np.zeros((size[1], size[0]), np.uint8)
        cv2.fillConvexPoly(mask, np.round(dst - corner).astype(np.int32), (1,))
        region = out[y0:y1, x0:x1]
        region[mask.astype(bool)] = patch[mask.astype(bool)]
    return out


def camera(frame_bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the door camera adds: a little blur and sensor noise."""
    noise = rng.integers(-3, 4, frame_bgr.shape, dtype=np.int16)  # about 2 grey levels, repeatable per seed
    img = cv2.GaussianBlur(frame_bgr, (3, 3), 0.6).astype(np.int16) + noise
    return np.clip(img, 0, 255).astype(np.uint8)


def background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An indoor-looking, faceless background: a smooth gradient with a few soft blocks."""
    W, H = size
    base = np.linspace(rng.uniform(90, 160), rng.uniform(120, 200), W, dtype=np.float32)[None, :, None]
    img = np.repeat(np.repeat(base, H, 0), 3, 2) * rng.uniform(0.85, 1.1, 3).astype(np.float32)
    for _ in range(3):
        x, y = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        w, h = int(rng.uniform(40, 200)), int(rng.uniform(40, 200))
        img[y:y + h, x:x + w] *= rng.uniform(0.6, 1.2)
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 8)


def attack(family: str, source, *, seed: int = 0, out_size: tuple[int, int] = (640, 480), fps: float = 15.0,
           seconds: float = 4.0):
    """Yield (time, BGR frame) of one attack of ``family``.

    ``source`` is one BGR image for the still families (``print-moving``, ``phone-photo``) and an iterable of
    (time, BGR frame) for the replays; replays last as long as the source, stills ``seconds``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown attack family {family!r}; one of {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    medium = MEDIA[{"print-moving": "print", "phone-photo": "phone", "laptop-replay": "laptop",
                    "phone-replay": "phone", "bare-replay": "bare"}[family]]
    back = background(out_size, rng)
    # a hand-held motion: slow sinusoids with random phases; prints are also bent and unbent
    phases = rng.uniform(0, 2 * np.pi, 6)
    amp_yaw = rng.uniform(10, 25) if family != "bare-replay" else 0.0
    amp_pitch = rng.uniform(5, 15) if family != "bare-replay" else 0.0
    bend_amp = rng.uniform(0.1, 0.35) if family == "print-moving" else 0.0
    scale = {"print-moving": 0.55, "phone-photo": 0.5, "phone-replay": 0.5, "laptop-replay": 0.95,
             "bare-replay": 1.0}[family] * rng.uniform(0.9, 1.1)
    if family in ("print-moving", "phone-photo"):
        frames = ((i / fps, source) for i in range(int(seconds * fps)))
    else:
        frames = iter(source)
    for t, image in frames:
        if family == "bare-replay":
            frame = cv2.resize(image, out_size, interpolation=cv2.INTER_AREA)
            yield t, camera(frame, rng)
            continue
        sheet = dress(image, medium, phase=t)
        w = 2 * np.pi * t / 3.0
        frame = project(sheet, out_size, back,
                        yaw=amp_yaw * np.sin(w + phases[0]), pitch=amp_pitch * np.sin(0.7 * w + phases[1]),
                        roll=4 * np.sin(0.5 * w + phases[2]),
                        bend=bend_amp * (0.5 + 0.5 * np.sin(0.8 * w + phases[3])),
                        scale=scale, shift=(0.04 * np.sin(0.6 * w + phases[4]), 0.03 * np.sin(0.9 * w + phases[5])))
        yield t, camera(frame, rng)
