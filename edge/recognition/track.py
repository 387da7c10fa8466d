"""Follow a face across frames and judge it by its best frames together. Pure logic over numpy arrays.

One frame of a face is a noisy measurement: a blink, a turn of the head or motion blur moves its embedding, and
a door that votes frame by frame refuses residents whose every single frame is a little off. The frames of one
visit, averaged, are much closer to the person's templates (scripts/bench_door.py measures it). So the door
keeps a :class:`Track` per face in view, continued while the box overlaps and the embedding stays the same
person's, and matches the quality-weighted mean of the track's best recent frames.

A track never mixes two people: a frame whose embedding is not close to the track's (someone else stepped in
front of the camera, or the largest face is now another person) starts a new track, so a stranger cannot ride
on frames of a resident.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .quality import MAX_BRIGHTNESS, MIN_BRIGHTNESS, MIN_FACE_PX, MIN_SHARPNESS


def frame_weight(*, score: float, size: float, sharpness: float, brightness: float) -> float:
    """How much one frame counts in its track, in (0, 1]: detector confidence, scaled down for frames that are
    small, blurred, dark or overexposed (the limits of :mod:`edge.recognition.quality`)."""
    weight = float(np.clip(score, 0.05, 1.0))
    weight *= float(np.clip(size / MIN_FACE_PX, 0.2, 1.0))
    weight *= float(np.clip(sharpness / MIN_SHARPNESS, 0.2, 1.0))
    if not MIN_BRIGHTNESS <= brightness <= MAX_BRIGHTNESS:
        weight *= 0.5
    return weight


def face_weight(face) -> float:
    """:func:`frame_weight` of an :class:`edge.recognition.engine.Face`."""
    q = face.quality
    return frame_weight(score=face.score, size=face.size, sharpness=q.sharpness, brightness=q.brightness)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class TrackOptions:
    """How tracks are formed. The defaults were chosen with scripts/bench_door.py (photographs and clips)."""

    min_overlap: float = 0.2       # box IoU with the track's last box that continues it
    same_face: float = 0.45        # cosine with the track's embedding below which the frame is someone else
    gap_seconds: float = 1.0       # a track not seen for this long has ended
    keep_frames: int = 15          # recent frames remembered per track
    best_frames: int = 6           # the best (highest weight) of them make the track's embedding

    def __post_init__(self):
        if not 1 <= self.best_frames <= self.keep_frames:
            raise ValueError("best_frames must be between 1 and keep_frames")
        if self.gap_seconds <= 0:
            raise ValueError("gap_seconds must be positive")


@dataclass
class Frame:
    time: float
    box: tuple
    embedding: np.ndarray
    weight: float
    label: object = None           # what the caller ranked this frame as (e.g. its best user), for k-of-n


@dataclass
class Track:
    """One face followed across frames. ``id`` is unique per :class:`Tracker`; ``started`` is the time of its
    first frame."""

    id: int
    started: float
    options: TrackOptions
    frames: deque = field(default_factory=deque)
    _embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def last(self) -> Frame:
        return self.frames[-1]

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, frame: Frame) -> None:
        self.frames.append(frame)
        while len(self.frames) > self.options.keep_frames:
            self.frames.popleft()
        self._embedding = None

    def best(self) -> list[Frame]:
        """The track's best recent frames (highest weight first; the newer of equal weights first)."""
        ranked = sorted(enumerate(self.frames), key=lambda iv: (-iv[1].weight, -iv[0]))
        return [f for _, f in ranked[:self.options.best_frames]]

    def embedding(self) -> np.ndarray:
        """Quality-weighted mean of the best recent frames' embeddings, L2-normalised."""
        if self._embedding is None:
            best = self.best()
            weights = np.array([max(f.weight, 1e-6) for f in best], np.float32)
            mean = (np.stack([f.embedding for f in best]) * weights[:, None]).sum(axis=0)
            norm = float(np.linalg.norm(mean))
            self._embedding = (mean / norm if norm > 0 else mean).astype(np.float32)
        return self._embedding

    def labels(self) -> list:
        """The caller's label of every remembered frame, oldest first."""
        return [f.label for f in self.frames]


class Tracker:
    """Assigns each observed face to a track. Call :meth:`observe` once per face per frame, in time order."""

    def __init__(self, options: TrackOptions | None = None):
        self.options = options or TrackOptions()
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks)

    def reset(self) -> None:
        self._tracks.clear()

    def expire(self, now: float) -> None:
        """Forget tracks not seen for ``gap_seconds`` (the face left)."""
        self._tracks = [t for t in self._tracks if now - t.last.time <= self.options.gap_seconds]

    def observe(self, box, embedding: np.ndarray, now: float, *, weight: float = 1.0, label=None) -> Track:
        """The track this face continues, or a new one. ``embedding`` must be L2-normalised."""
        self.expire(now)
        embedding = np.asarray(embedding, np.float32).ravel()
        frame = Frame(time=now, box=tuple(float(v) for v in box), embedding=embedding, weight=float(weight),
                      label=label)
        track = self._continued(frame)
        if track is None:
            track = Track(id=self._next_id, started=now, options=self.options)
            self._next_id += 1
            self._tracks.append(track)
        track.add(frame)
        return track

    def _continued(self, frame: Frame) -> Track | None:
        """The live track whose last box overlaps this one and whose embedding is this person's; best first by
        similarity. A track the face overlaps but does not resemble is ended: someone else is there now."""
        best, best_sim = None, self.options.same_face
        for track in list(self._tracks):
            if box_iou(track.last.box, frame.box) < self.options.min_overlap:
                continue
            sim = float(np.dot(track.embedding(), frame.embedding))
            if sim >= best_sim:
                best, best_sim = track, sim
            else:
                self._tracks.remove(track)      # another person in the same place: that track is over
        return best


@dataclass(frozen=True)
class TrackMatch:
    """A track ranked against the gallery: who it looks like, how much, and by what lead."""

    user_id: str | None
    score: float
    runner_up: float
    frames: int            # frames in the track
    agreeing: int          # of the track's recent frames, how many were ranked as ``user_id`` on their own

    @property
    def margin(self) -> float:
        return self.score - self.runner_up


def match_track(track: Track, rank: Callable[..., list]) -> TrackMatch:
    """Rank the track's embedding with ``rank(embedding, top=2)`` (an :class:`edge.recognition.match.Ranker`).
    Frame labels, when the caller set them, are the frames' own best users (for the k-of-n guard)."""
    ranked = rank(track.embedding(), top=2)
    user, score = (ranked[0][0], float(ranked[0][1])) if ranked else (None, -1.0)
    runner_up = float(ranked[1][1]) if len(ranked) > 1 else -1.0
    agreeing = sum(1 for label in track.labels() if label is not None and label == user)
    return TrackMatch(user_id=user, score=score, runner_up=runner_up, frames=len(track), agreeing=agreeing)


def track_passes(m: TrackMatch, *, threshold: float, margin: float = 0.0, min_frames: int = 1,
                 agree: int = 0) -> bool:
    """The door's rule for a track: its embedding reaches the threshold for one person, leads the runner-up by
    ``margin``, the track has ``min_frames`` frames, and ``agree`` of them ranked that person on their own."""
    return (m.user_id is not None and m.score >= threshold and m.margin >= margin and m.frames >= min_frames
            and m.agreeing >= agree)
