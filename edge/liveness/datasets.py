"""Readers for the liveness data in ``../shared/liveness`` (see its MANIFEST.md): used by tests and benchmarks.

NUAA frames are grouped into sequences (every field of the file name but the last) and ordered by the frame
number; the database was recorded at 20 frames per second, so a frame's time is its number / 20. Clips are read
with OpenCV and scaled down to the door camera's size (longest side 640), with their own frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

NUAA_FPS = 20.0
DOOR_SIDE = 640


@dataclass(frozen=True)
class Sequence:
    """Frames of one recording with their times in seconds; ``kind`` is "live" or an attack family."""

    name: str
    kind: str
    subject: str
    paths: tuple[Path, ...] = ()
    times: tuple[float, ...] = ()
    clip: Path | None = None

    def frames(self):
        """Yield (time, BGR frame)."""
        if self.clip is not None:
            for t, frame in read_clip(self.clip):
                yield t, frame
            return
        for t, path in zip(self.times, self.paths):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                yield t, frame


def nuaa_sequences(root: str | Path, kind: str) -> list[Sequence]:
    """The NUAA sequences of ``kind`` ("live" or "spoof"), ordered by name."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted((Path(root) / "nuaa_train" / kind).glob("*/*.jpg")):
        key, _, number = path.stem.rpartition("_")
        groups.setdefault(key, []).append((int(number), path))
    out = []
    for key in sorted(groups):
        items = sorted(groups[key])
        out.append(Sequence(name=f"nuaa-{kind}-{key}", kind="print" if kind == "spoof" else "live",
                            subject=key.split("_")[0], paths=tuple(p for _, p in items),
                            times=tuple(n / NUAA_FPS for n, _ in items)))
    return out


def clip_sequences(root: str | Path) -> list[Sequence]:
    """The live video clips (``clips/*.mp4``)."""
    return [Sequence(name=f"clip-{p.stem}", kind="live", subject=p.stem, clip=p)
            for p in sorted((Path(root) / "clips").glob("*.mp4"))]


def read_clip(path: str | Path, *, max_side: int = DOOR_SIDE):
    """Yield (time in seconds, BGR frame scaled so its longest side is at most ``max_side``)."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            scale = max_side / max(frame.shape[:2])
            if scale < 1:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            yield index / fps, np.ascontiguousarray(frame)
            index += 1
    finally:
        capture.release()


def decimate(frames, fps_cap: float):
    """Keep at most ``fps_cap`` of the (time, frame) pairs per second, as a door camera of that rate sees them."""
    out, last = [], None
    for t, f in frames:
        if last is None or t - last >= 1.0 / fps_cap - 1e-6:
            out.append((t, f))
            last = t
    return out
