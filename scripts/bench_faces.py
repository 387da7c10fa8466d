"""Embeddings of the shared photographs and clips for the door benchmarks, computed once and cached on disk.

Every photograph is seen as a camera would see it on successive frames (small shifts, scale, light, blur,
noise, mirror: :func:`variants`); for each variant the door's face (the largest) is embedded with the real
engine, and its detector score, size, sharpness and brightness are kept so that the benchmark can weight frames
as the door does. Video clips are embedded frame by frame. The cache lives outside the repository
(``~/.cache/edge-face/bench``), keyed by what the pipeline computes on a few fixed photographs
(:mod:`edge.recognition.fingerprint`), so a re-run takes seconds and a change of alignment re-embeds.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
FACES = Path(os.environ.get("EDGE_FACE_FACES_DIR", REPO.parent / "shared" / "faces"))
LIVENESS = Path(os.environ.get("EDGE_FACE_LIVENESS_DIR", REPO.parent / "shared" / "liveness"))
CACHE = Path(os.environ.get("EDGE_FACE_CACHE") or "~/.cache/edge-face").expanduser() / "bench"

# quality columns: detector score, face size (shorter box side, px), sharpness, brightness
QUALITY_COLUMNS = ("score", "size", "sharpness", "brightness")


@dataclass
class Shots:
    """What the door saw of one photograph or clip: one row per frame in which a face was found."""

    embeddings: np.ndarray      # (F, 128) float32, L2-normalised
    quality: np.ndarray         # (F, 4) score, size, sharpness, brightness
    boxes: np.ndarray           # (F, 4) x, y, w, h
    frames: np.ndarray          # (F,) index of the variant / video frame
    largest_is_central: bool = True   # photographs: the labelled (central) face is the one the door takes

    def __len__(self) -> int:
        return len(self.embeddings)


# Per photograph set, a few of its photographs: what the engine computes on them keys that set's cache (the
# LFW crops are small, the deepface originals large: a change of how large images are decoded re-embeds those).
FINGERPRINT_PHOTOS = {
    "lfw_view1": ("lfw_view1/Hans_Blix/Hans_Blix_0002.jpg", "lfw_view1/Zhu_Rongji/Zhu_Rongji_0001.jpg"),
    "deepface_unit": ("deepface_unit/id01/img1.jpg", "deepface_unit/_extra_not_identity_labeled/couple.jpg"),
}
_FINGERPRINTS: dict = {}


def pipeline_hash(engine, photo_set: str = "lfw_view1") -> str:
    """What the engine computes on a few fixed photographs of a set (edge.recognition.fingerprint): the key of
    that set's cache."""
    from edge.recognition.fingerprint import fingerprint

    key = (id(engine), photo_set)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = fingerprint(engine, [FACES / p for p in FINGERPRINT_PHOTOS[photo_set]])
    return _FINGERPRINTS[key]


def variants(img: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The photograph as a camera would see it on successive frames: small shifts, scale, light, blur, noise."""
    out = [img]
    h, w = img.shape[:2]
    for i in range(count - 1):
        scale = rng.uniform(0.9, 1.1)
        angle = rng.uniform(-6, 6)
        m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-6, 6), h / 2 + rng.uniform(-6, 6)), angle, scale)
        v = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        v = cv2.convertScaleAbs(v, alpha=rng.uniform(0.75, 1.25), beta=rng.uniform(-20, 20))
        if i % 2:
            v = cv2.GaussianBlur(v, (0, 0), rng.uniform(0.6, 1.4))
        v = np.clip(v.astype(np.int16) + rng.normal(0, 4, v.shape).astype(np.int16), 0, 255).astype(np.uint8)
        if i % 3 == 2:
            v = cv2.flip(v, 1)
        out.append(v)
    return out


def list_people() -> dict[str, list[Path]]:
    """``lfw/<name>`` and ``deepface/<id>`` -> their photographs."""
    people: dict[str, list[Path]] = {}
    for d in sorted((FACES / "lfw_view1").iterdir()):
        if d.is_dir():
            people[f"lfw/{d.name}"] = sorted(d.glob("*.jpg"))
    for d in sorted((FACES / "deepface_unit").iterdir()):
        if d.is_dir() and d.name.startswith("id"):
            people[f"deepface/{d.name}"] = sorted(
                p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return people


def _central(faces, shape) -> int:
    """Index of the face LFW labels: the one nearest the middle of the picture."""
    h, w = shape[:2]

    def cost(f):
        x, y, bw, bh = f.box
        return math.hypot(x + bw / 2 - w / 2, y + bh / 2 - h / 2) - 0.5 * min(bw, bh)
    return min(range(len(faces)), key=lambda i: cost(faces[i]))


def _shots(rows: list, frames: list, central: bool = True) -> Shots:
    if not rows:
        return Shots(np.zeros((0, 128), np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32),
                     np.zeros(0, np.int32), central)
    return Shots(np.stack([r.embedding for r in rows]).astype(np.float32),
                 np.array([(r.score, r.size, r.quality.sharpness, r.quality.brightness) for r in rows], np.float32),
                 np.array([r.box for r in rows], np.float32), np.array(frames, np.int32), central)


def _load(path: Path) -> dict[str, Shots]:
    out: dict[str, Shots] = {}
    if not path.is_file():
        return out
    data = np.load(path, allow_pickle=False)
    for key in data.files:
        if key.endswith("|e"):
            k = key[:-2]
            out[k] = Shots(data[k + "|e"], data[k + "|q"], data[k + "|b"], data[k + "|f"], bool(data[k + "|c"]))
    return out


def _save(path: Path, shots: dict[str, Shots]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, s in shots.items():
        arrays.update({k + "|e": s.embeddings, k + "|q": s.quality, k + "|b": s.boxes, k + "|f": s.frames,
                       k + "|c": np.array(s.largest_is_central)})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def photo_shots(engine, paths: list[Path], n_variants: int, *, cached_only: bool = False) -> dict[str, Shots]:
    """relative path -> :class:`Shots` of its variants (variant 0 is the photograph itself); cached per set.
    ``cached_only``: return what the caches hold (a quick look while a first run is still embedding)."""
    out: dict[str, Shots] = {}
    by_set: dict[str, list[Path]] = {}
    for p in paths:
        by_set.setdefault(p.relative_to(FACES).parts[0], []).append(p)
    for photo_set, members in by_set.items():
        cache = CACHE / (f"photos_{photo_set}_{engine.model_id.replace(':', '_')}_"
                         f"{pipeline_hash(engine, photo_set)}_{n_variants}.npz")
        out.update(_photo_shots(engine, members, n_variants, cache, cached_only))
    return out


def _photo_shots(engine, paths, n_variants, cache: Path, cached_only: bool) -> dict[str, Shots]:
    from edge.recognition import load_image

    known = _load(cache)
    todo = [] if cached_only else [p for p in paths if str(p.relative_to(FACES)) not in known]
    rng = np.random.default_rng(7)
    start = time.monotonic()
    for i, p in enumerate(todo):
        key = str(p.relative_to(FACES))
        try:
            img = load_image(p)
        except Exception:
            known[key] = _shots([], [])
            continue
        rows, frames, central = [], [], True
        for j, v in enumerate(variants(img, n_variants, rng)):
            faces = engine.faces(v)
            if not faces:
                continue
            if j == 0 and len(faces) > 1 and _central(faces, v.shape) != 0:
                central = False
            rows.append(faces[0])
            frames.append(j)
        known[key] = _shots(rows, frames, central)
        if (i + 1) % 500 == 0:
            rate = (i + 1) / (time.monotonic() - start)
            print(f"  embedded {i + 1}/{len(todo)} photographs ({rate:.1f}/s)", file=sys.stderr)
            _save(cache, known)
    if todo:
        _save(cache, known)
    return known


def clip_shots(engine, clip: Path, *, every: int = 1, detect_max_side: int = 640) -> tuple[Shots, float]:
    """Shots of every ``every``-th frame of a video clip (the door's nearest face) and the clip's frame rate."""
    cache = CACHE / f"clip_{clip.stem}_{engine.model_id.replace(':', '_')}_{pipeline_hash(engine)}_{every}.npz"
    cap = cv2.VideoCapture(str(clip))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
    known = _load(cache)
    if "clip" in known:
        cap.release()
        return known["clip"], fps
    rows, frames, index = [], [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % every == 0:
                faces = engine.faces(frame, limit=1, detect_max_side=detect_max_side)
                if faces:
                    rows.append(faces[0])
                    frames.append(index)
            index += 1
    finally:
        cap.release()
    shots = _shots(rows, frames)
    _save(cache, {"clip": shots})
    return shots, fps
