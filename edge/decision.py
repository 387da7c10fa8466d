"""When to open the door: k-of-n voting over frames, a margin, a cooldown and a lockout. Pure logic.

No camera, no model, no clock of its own: the service feeds one :class:`Candidate` per frame (or ``None``
when no usable face is in view) with the time, and acts on the returned :class:`Decision`. That keeps every
rule testable with plain numbers.

The door judges a *track*, not a frame: :func:`candidate_from_track` follows the nearest face across frames
(:mod:`edge.recognition.track`) and scores the quality-weighted mean of its best recent frames, which lets
residents in at the first try far more often than frame-by-frame votes at the same safety
(scripts/bench_door.py). A new track (someone else stepped in) starts a new attempt. The threshold follows
from the administrator's security level and the number of people enrolled (:func:`door_policy`).

The rules, all from :class:`Policy`:

* a frame *votes* for a user when the largest face is big enough, of usable quality, its track scores at or
  above the threshold for that user, and leads the second-best user by ``margin``;
* the door opens when one user has ``frames_required`` votes among the last ``frames_considered`` face frames
  inside ``window_seconds``; a single lucky frame never opens it;
* a face that stays in view for ``window_seconds`` without that is refused: ``unknown`` if nobody scored at
  the threshold, ``deny`` if someone did but not consistently or not clearly enough;
* after a grant, ``cooldown_seconds`` without decisions; after ``lockout_after`` refusals of one face
  (the same track, or an embedding close to a refused one), that face is ignored for ``lockout_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .config import DecisionConfig, check_runtime
from .recognition.security import Security, effective_threshold
from .recognition.track import Tracker, face_weight, match_track

_DEFAULTS = DecisionConfig()


@dataclass(frozen=True)
class Policy:
    """The rules one decision is made by. Defaults are the configuration's (one table: :mod:`edge.config`)."""

    threshold: float
    frames_required: int = _DEFAULTS.frames_required
    frames_considered: int = _DEFAULTS.frames_considered
    window_seconds: float = _DEFAULTS.window_seconds
    margin: float = _DEFAULTS.margin
    min_face_px: int = _DEFAULTS.min_face_px
    cooldown_seconds: float = _DEFAULTS.cooldown_seconds
    lockout_after: int = _DEFAULTS.lockout_after
    lockout_seconds: float = _DEFAULTS.lockout_seconds
    same_face_similarity: float = 0.5  # two refused faces this close are treated as one person

    def __post_init__(self):
        if not 1 <= self.frames_required <= self.frames_considered:
            raise ValueError("frames_required must be between 1 and frames_considered")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")

    @classmethod
    def from_settings(cls, decision_cfg: DecisionConfig, settings: Mapping[str, Any] | None = None, *,
                      model_threshold: float) -> "Policy":
        """Configuration defaults, overridden by the store's run-time settings; threshold None = the model's.

        Values that break a rule between settings raise :class:`~edge.errors.SettingError` (the same rule the
        configuration file and the store apply; nothing is silently clamped)."""
        names = [f.name for f in fields(cls) if hasattr(decision_cfg, f.name)]
        values = {name: getattr(decision_cfg, name) for name in names}
        for key, value in (settings or {}).items():
            if key in values and value is not None:
                values[key] = value
        if values["threshold"] is None:
            values["threshold"] = model_threshold
        check_runtime(values)
        return cls(**values)


@dataclass(frozen=True)
class Candidate:
    """The face a frame is judged by: its best and second-best enrolled user and how it looks."""

    user_id: str | None
    score: float
    runner_up: float
    embedding: np.ndarray
    box: tuple = (0, 0, 0, 0)
    quality_ok: bool = True
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)  # aligned face, for the record
    landmarks: np.ndarray | None = field(default=None, repr=False, compare=False)  # (5, 2) eyes, nose, mouth
    track_id: int | None = None        # the track this face belongs to; a new track is a new attempt
    frames: int = 1                    # frames of that track behind the scores


@dataclass(frozen=True)
class Decision:
    """What to do after a frame. ``kind`` is one of: idle (no face), collecting, grant, deny, unknown,
    lockout (this refusal locked the face out), locked_out (a locked-out face is in view), cooldown."""

    kind: str
    user_id: str | None = None
    score: float | None = None
    votes: int = 0
    frames: int = 0
    reason: str = ""
    attempt_seconds: float | None = None   # a grant: from the attempt's first frame to this one

    @property
    def opens(self) -> bool:
        return self.kind == "grant"


def candidate_from_faces(faces: Sequence, rank: Callable[[np.ndarray], list], *, min_face_px: int) -> Candidate | None:
    """The largest face whose shorter side is at least ``min_face_px``, scored with ``rank(embedding)``
    (a list of (user_id, score), best first: ``match.best_per_user`` over the gallery)."""
    usable = [f for f in faces if min(f.box[2], f.box[3]) >= min_face_px and f.embedding is not None]
    if not usable:
        return None
    face = max(usable, key=lambda f: f.box[2] * f.box[3])
    ranked = rank(face.embedding)
    best_user, best = (ranked[0][0], float(ranked[0][1])) if ranked else (None, -1.0)
    second = float(ranked[1][1]) if len(ranked) > 1 else -1.0
    quality = getattr(face, "quality", None)
    return Candidate(user_id=best_user, score=best, runner_up=second, embedding=face.embedding,
                     box=tuple(int(v) for v in face.box), quality_ok=bool(getattr(quality, "ok", True)),
                     crop=getattr(face, "crop", None), landmarks=getattr(face, "landmarks", None))


def candidate_from_track(faces: Sequence, tracker: Tracker, rank: Callable[..., list], now: float, *,
                         min_face_px: int) -> Candidate | None:
    """The largest face whose shorter side is at least ``min_face_px``, added to its track in ``tracker``; the
    candidate carries the track's scores (``rank(embedding, top=2)`` of the track's mean embedding), its mean
    embedding (what lockouts compare) and the face's box and crop."""
    usable = [f for f in faces if min(f.box[2], f.box[3]) >= min_face_px and f.embedding is not None]
    if not usable:
        return None
    face = max(usable, key=lambda f: f.box[2] * f.box[3])
    own = rank(face.embedding, top=1)
    track = tracker.observe(face.box, face.embedding, now, weight=face_weight(face),
                            label=own[0][0] if own else None)
    m = match_track(track, rank)
    return Candidate(user_id=m.user_id, score=m.score, runner_up=m.runner_up, embedding=track.embedding(),
                     box=tuple(int(v) for v in face.box), quality_ok=True, crop=getattr(face, "crop", None),
                     landmarks=getattr(face, "landmarks", None), track_id=track.id, frames=m.frames)


def door_policy(decision_cfg: DecisionConfig, settings: Mapping[str, Any] | None, *, security: Security | None,
                model_threshold: float, people: int) -> tuple[Policy, str]:
    """The door's policy and, in words, where its threshold comes from: the administrator's explicit
    threshold, else the one the security level (at most 1 stranger in ``security_level`` attempts) gives for
    ``people`` enrolled, else the earlier default 0.80 (a manifest without calibration)."""
    override = (settings or {}).get("threshold", decision_cfg.threshold)
    level = (settings or {}).get("security_level") or decision_cfg.security_level
    threshold, source = effective_threshold(override=override, far_per_attempt=1.0 / level, security=security,
                                            people=people, model_threshold=model_threshold)
    return Policy.from_settings(decision_cfg, settings, model_threshold=threshold), source


def votes_for(policy: Policy, candidate: Candidate) -> bool:
    """The one-frame rule: a usable face at or above the threshold that leads the runner-up by the margin.
    The door's vote and the web page's "test recognition" both use it."""
    return (candidate.user_id is not None and candidate.quality_ok and candidate.score >= policy.threshold
            and candidate.score - candidate.runner_up >= policy.margin)


@dataclass
class _Vote:
    time: float
    user_id: str | None  # the user this frame votes for, or None
    best_user: str | None
    score: float
    embedding: np.ndarray


@dataclass
class _Refused:
    embedding: np.ndarray
    count: int
    last: float
    locked_until: float = 0.0


class Decider:
    """The voting state for one camera. Call :meth:`observe` once per processed frame."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._votes: list[_Vote] = []
        self._attempt_start: float | None = None
        self._last_face: float | None = None
        self._attempt_record: _Refused | None = None  # refusals already counted for the face in view
        self._cooldown_until = float("-inf")
        self._cooldown_user: str | None = None
        self._refused: list[_Refused] = []
        self._forgiven: _Refused | None = None   # the record the last grant cleared (refused_after_vote)
        self._track_id: int | None = None
        self._track_frames = 0           # frames of the face now in view in this attempt

    def update_policy(self, policy: Policy) -> None:
        """New settings take effect at once; votes gathered under the old ones are dropped."""
        if policy != self.policy:
            self.policy = policy
            self._reset_attempt()

    def reset(self) -> None:
        self._reset_attempt()
        self._cooldown_until = float("-inf")
        self._refused.clear()
        self._attempt_record = None

    def _reset_attempt(self) -> None:
        self._votes.clear()
        self._attempt_start = None
        self._track_frames = 0

    def observe(self, candidate: Candidate | None, now: float) -> Decision:
        p = self.policy
        self._forget_old(now)
        if candidate is None:
            if self._last_face is not None and now - self._last_face > p.window_seconds:
                self._reset_attempt()  # the face left: the next one is a new attempt (and a new track)
                self._attempt_record = None
                self._last_face = None
            return Decision("idle")
        track_continues = self._last_face is not None and now - self._last_face <= p.window_seconds
        if not track_continues:
            self._reset_attempt()       # the face left: the next one is a new attempt
            self._attempt_record = None
        elif candidate.track_id is not None and candidate.track_id != self._track_id:
            # Someone else is in front of the camera now: their frames never count with the previous face's.
            # The attempt's clock runs on, so a stream of brief faces is still refused and logged.
            self._votes.clear()
            self._track_frames = 0
            self._attempt_record = None
        self._track_id = candidate.track_id
        self._last_face = now

        locked = self._locked_record(candidate.embedding, now)
        if locked is not None:
            self._reset_attempt()
            return Decision("locked_out", user_id=candidate.user_id, score=candidate.score,
                            reason=f"locked out for {locked.locked_until - now:.0f} more s")
        if now < self._cooldown_until:
            return Decision("cooldown", user_id=self._cooldown_user, score=candidate.score)

        if self._attempt_start is None:
            self._attempt_start = now
        self._track_frames += 1
        vote_for = candidate.user_id if votes_for(p, candidate) else None
        self._votes.append(_Vote(now, vote_for, candidate.user_id, candidate.score, candidate.embedding))
        self._votes = [v for v in self._votes[-p.frames_considered:] if now - v.time <= p.window_seconds]

        tally: dict[str, list[_Vote]] = {}
        for v in self._votes:
            if v.user_id is not None:
                tally.setdefault(v.user_id, []).append(v)
        if tally:
            user, votes = max(tally.items(), key=lambda kv: (len(kv[1]), max(v.score for v in kv[1])))
            if len(votes) >= p.frames_required:
                frames = len(self._votes)
                elapsed = now - self._attempt_start
                self._reset_attempt()
                self._cooldown_until = now + p.cooldown_seconds
                self._cooldown_user = user
                self._forgive(candidate.embedding)
                return Decision("grant", user_id=user, score=max(v.score for v in votes), votes=len(votes),
                                frames=frames, attempt_seconds=elapsed)

        # This frame's vote is in (never an empty refusal), and the face in view had the frames it needs.
        if now - self._attempt_start >= p.window_seconds and self._track_frames >= p.frames_required:
            return self._refuse(now)
        best = max(self._votes, key=lambda v: v.score)
        return Decision("collecting", user_id=best.best_user, score=best.score,
                        votes=len(tally.get(best.best_user, [])) if best.best_user else 0, frames=len(self._votes))

    def _refuse(self, now: float) -> Decision:
        p = self.policy
        votes = self._votes
        best = max(votes, key=lambda v: v.score)
        embedding = _mean_direction(v.embedding for v in votes)
        recognised = any(v.score >= p.threshold for v in votes)
        kind = "deny" if recognised else "unknown"
        if recognised:
            reason = (f"{best.best_user} reached the threshold in fewer than {p.frames_required} of "
                      f"{p.frames_considered} frames or without a {p.margin:g} lead")
        else:
            reason = f"best similarity {best.score:.3f} is below the threshold {p.threshold:.3f}"
        record = self._attempt_record or self._similar_record(embedding)
        if record is None:
            record = _Refused(embedding=embedding, count=0, last=now)
            self._refused.append(record)
        record.count += 1
        record.last = now
        record.embedding = embedding
        self._attempt_record = record
        frames = len(votes)
        self._reset_attempt()
        if record.count >= p.lockout_after:
            record.locked_until = now + p.lockout_seconds
            record.count = 0
            return Decision("lockout", user_id=best.best_user, score=best.score, frames=frames,
                            reason=f"{p.lockout_after} refusals in a row; locked out for {p.lockout_seconds:g} s")
        return Decision(kind, user_id=best.best_user, score=best.score, frames=frames, reason=reason)

    def _similar_record(self, embedding: np.ndarray) -> _Refused | None:
        best, best_sim = None, self.policy.same_face_similarity
        for record in self._refused:
            sim = float(np.dot(record.embedding, embedding))
            if sim >= best_sim:
                best, best_sim = record, sim
        return best

    def _locked_record(self, embedding: np.ndarray, now: float) -> _Refused | None:
        if self._attempt_record is not None and self._attempt_record.locked_until > now:
            return self._attempt_record
        record = self._similar_record(embedding)
        if record is not None and record.locked_until > now:
            self._attempt_record = record
            return record
        return None

    def refused_after_vote(self, embedding: np.ndarray, now: float) -> bool:
        """A grant vote that a later check refused (liveness: a photograph, a screen) counts as a refusal of that
        face, so an attacker cannot retry forever: after ``lockout_after`` of them the face is locked out for
        ``lockout_seconds``. Returns True when this refusal locked it out."""
        p = self.policy
        record = self._forgiven or self._similar_record(embedding)  # the vote's grant forgave it: take it back
        self._forgiven = None
        if record is None:
            record = _Refused(embedding=np.asarray(embedding, np.float32), count=0, last=now)
        if record not in self._refused:
            self._refused.append(record)
        record.count += 1
        record.last = now
        self._attempt_record = record
        if record.count >= p.lockout_after:
            record.locked_until = now + p.lockout_seconds
            record.count = 0
            return True
        return False

    def _forgive(self, embedding: np.ndarray) -> None:
        """A grant clears the refusals counted against that face (a bad first look is not held against them)."""
        record = self._attempt_record or self._similar_record(embedding)
        if record is not None and record in self._refused:
            self._refused.remove(record)
        self._forgiven = record
        self._attempt_record = None

    def _forget_old(self, now: float) -> None:
        keep = max(self.policy.lockout_seconds, 10 * self.policy.window_seconds)
        self._refused = [r for r in self._refused if r.locked_until > now or now - r.last <= keep]

    def status(self, now: float) -> dict:
        return {"cooldown_seconds": max(0.0, self._cooldown_until - now),
                "locked_faces": sum(1 for r in self._refused if r.locked_until > now),
                "votes": len(self._votes)}


def _mean_direction(embeddings: Iterable[np.ndarray]) -> np.ndarray:
    stack = np.stack([np.asarray(e, dtype=np.float32) for e in embeddings])
    mean = stack.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean
