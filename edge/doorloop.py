"""The door loop: frame -> faces -> candidate -> vote -> grant checks -> action, one frame at a time.

Stages of :meth:`DoorLoop.process` (each a method, in this order):

1. ``_candidate``: the nearest face, embedded and ranked against the gallery (:mod:`edge.recognition`);
2. ``decider.observe``: the k-of-n vote, margin, cooldown and lockout (:mod:`edge.decision`, pure logic);
3. ``_check_grant``: only for a ``grant`` vote, every registered :data:`GrantCheck` in turn; the first that
   returns a reason turns the grant into a deny. Built in: the user must still be active (re-read from the
   store: a user disabled a moment ago must not get in). **A liveness check slots in here**
   (``loop.add_grant_check(check)``), between the recognition vote and the relay;
4. ``_act``: relay/LEDs, the decision's face thumbnail (:mod:`edge.eventfaces`, encrypted; after the relay),
   the access log (synchronous: the audit record) and an :class:`edge.events.Event` for the listeners
   (asynchronous, never blocks).

After each frame with a face, :attr:`DoorLoop.last_sighting` says what the door made of it; the live view
(:mod:`edge.liveview`) draws it in the web thread, so watching costs the door nothing.

It returns a typed :class:`FrameResult`. Gallery and policy changes are applied between frames
(:meth:`request_reload` from any thread, applied in :meth:`process` / :meth:`idle`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .config import Config
from .decision import Candidate, Decider, Decision, Policy, candidate_from_faces, votes_for
from .eventfaces import EventFaces
from .events import EventHub
from .liveview import Sighting
from .lognames import journal_name
from .recognition.match import Ranker
from .status import LastDecision

log = logging.getLogger(__name__)

LIVENESS_SHOWN_SECONDS = 3.0     # how long the live view shows the liveness verdict on the face
QUIET_KINDS = ("idle", "collecting", "cooldown", "locked_out")   # decisions that do nothing at the door


@dataclass(frozen=True)
class FrameResult:
    """What one frame led to. ``action`` is ``none`` (nothing happened at the door), ``grant``, ``deny``,
    ``unknown`` or ``lockout``; a grant vote refused by a grant check has ``action == "deny"`` and the reason."""

    decision: Decision
    candidate: Candidate | None
    action: str = "none"
    user: str | None = None            # user name, never an id
    reason: str = ""
    unlocked_seconds: float = 0.0
    photo: str | None = None           # name of the decision's face thumbnail (edge.eventfaces)


GrantCheck = Callable[[Decision, Optional[Candidate], Optional[np.ndarray]], Optional[str]]
"""A last word before the relay: ``check(decision, candidate, frame)`` returns a reason to refuse, or None to let
the grant stand. ``frame`` is the frame that completed the vote; ``candidate.box``/``crop`` the face in it."""


class DoorLoop:
    """Owns the decision state and acts on the door. Not thread-safe: one thread calls :meth:`process`."""

    def __init__(self, cfg: Config, *, engine: Any, store: Any, access_log: Any, door: Any, events: EventHub,
                 clock: Callable[[], float], wall_clock: Callable[[], float],
                 faces: EventFaces | None = None):
        self.cfg = cfg
        self.engine = engine
        self.store = store
        self.access_log = access_log
        self.door = door
        self.events = events
        self.clock = clock
        self.wall_clock = wall_clock
        self.faces = faces
        self.grant_checks: list[GrantCheck] = [self._user_is_active]
        self._reload = threading.Event()
        self._ranker: Ranker | None = None
        self.gallery_revision: int | None = None    # the store revision the gallery and policy were built from
        self.policy = self._make_policy()
        self.decider = Decider(self.policy)
        self.last_decision: LastDecision | None = None
        self.last_candidate: Candidate | None = None
        self.last_sighting: Sighting | None = None      # for the live view: drawn by the web thread
        self.refused_by: GrantCheck | None = None         # the grant check that refused the last grant vote
        self._liveness: tuple[str, float] | None = None   # ("live" | "spoof", when): the last verdict
        self.processed_frames = 0
        self._processed: deque[float] = deque()
        self._load_gallery()

    # ------------------------------------------------------------------ settings and gallery
    def _make_policy(self) -> Policy:
        return Policy.from_settings(self.cfg.decision, self.store.settings, model_threshold=self.engine.threshold)

    def _load_gallery(self) -> None:
        self.gallery_revision = self.store.revision
        gallery = self.store.gallery(self.engine.model_id)
        self._ranker = Ranker.for_gallery(gallery, aggregation=self.cfg.decision.aggregation)
        log.info("gallery: %d templates of %d active users (revision %d)", len(gallery.user_ids),
                 len(set(gallery.user_ids)), self.gallery_revision)

    @property
    def user_count(self) -> int:
        return len(self._ranker) if self._ranker is not None else 0

    def request_reload(self, cfg: Config | None = None) -> None:
        """Gallery and settings (and, after SIGHUP, the configuration) changed: applied before the next frame."""
        if cfg is not None:
            self.cfg = cfg
        self._reload.set()

    @property
    def reload_pending(self) -> bool:
        return self._reload.is_set()

    def _apply_reload(self) -> None:
        self._reload.clear()
        self._load_gallery()
        policy = self._make_policy()
        if policy != self.decider.policy:
            log.info("decision policy now %s", policy)
        self.decider.update_policy(policy)
        self.policy = policy

    def add_grant_check(self, check: GrantCheck) -> None:
        """Run ``check`` on every grant vote, after the built-in ones (liveness goes here)."""
        self.grant_checks.append(check)

    # ------------------------------------------------------------------ the stages
    def idle(self, now: float | None = None) -> Decision:
        """No frame came: the vote learns that nobody is in view (an attempt ends after its window)."""
        if self._reload.is_set():
            self._apply_reload()
        return self.decider.observe(None, self.clock() if now is None else now)

    def process(self, frame: np.ndarray, now: float | None = None) -> FrameResult:
        """One frame through every stage; see the module docstring."""
        if self._reload.is_set():
            self._apply_reload()
        now = self.clock() if now is None else now
        candidate = self._candidate(frame)
        decision = self.decider.observe(candidate, now)
        self.last_candidate = candidate
        refusal = self._check_grant(decision, candidate, frame) if decision.kind == "grant" else None
        result = self._act(decision, candidate, refusal)
        if decision.kind == "grant" and len(self.grant_checks) > 1:     # a liveness check judged this face
            spoof = refusal is not None and self.refused_by != self._user_is_active
            self._liveness = ("spoof" if spoof else "live", now)
        if candidate is not None:
            self.last_sighting = self._sighting(now, candidate)
        self._count(now)
        return result

    def _sighting(self, now: float, candidate: Candidate) -> Sighting:
        """What the live view draws: the face, its best match and, for a few seconds after grant checks beyond
        the built-in one (liveness) judged it, their verdict."""
        liveness = None
        if self._liveness is not None and now - self._liveness[1] <= LIVENESS_SHOWN_SECONDS:
            liveness = self._liveness[0]
        return Sighting(time=now, box=candidate.box, user_id=candidate.user_id, score=candidate.score,
                        passes=votes_for(self.policy, candidate), liveness=liveness)

    def _candidate(self, frame: np.ndarray) -> Candidate | None:
        faces = self.engine.faces(frame, limit=1, detect_max_side=self.cfg.recognition.frame_detect_side)
        return candidate_from_faces(faces, self._rank, min_face_px=self.policy.min_face_px)

    def _rank(self, embedding: np.ndarray) -> list:
        ranker = self._ranker
        return ranker(embedding, top=2) if ranker is not None else []

    def _check_grant(self, decision: Decision, candidate: Candidate | None, frame: np.ndarray | None) -> str | None:
        self.refused_by = None
        for check in self.grant_checks:
            reason = check(decision, candidate, frame)
            if reason:
                self.refused_by = check
                return reason
        return None

    def _user_is_active(self, decision: Decision, _candidate: Candidate | None, _frame: np.ndarray | None) -> str | None:
        self.store.refresh()   # a user disabled a moment ago (CLI, web) must not get in
        user = self.store.get_user(decision.user_id) if decision.user_id else None
        if user is None or user.status != "active":
            self.request_reload()
            return f"user is {'removed' if user is None else user.status}"
        return None

    def _act(self, decision: Decision, candidate: Candidate | None, refusal: str | None) -> FrameResult:
        kind = decision.kind
        if kind in QUIET_KINDS:
            return FrameResult(decision, candidate)
        name = self._user_name(decision.user_id)
        if kind == "grant" and refusal:
            self.door.signal_deny()
            log.warning("DENY %s: %s", journal_name(self.cfg, decision.user_id, name), refusal)
            self._remember("deny", name, decision.score, decision.user_id)
            photo = self._thumbnail(candidate)
            self.record("deny", user=name, user_id=decision.user_id, similarity=decision.score, decision="deny",
                        reason=refusal, **_photo(photo))
            return FrameResult(decision, candidate, "deny", name, refusal, photo=photo)
        if kind == "grant":
            who = journal_name(self.cfg, decision.user_id, name)
            seconds = self.door.unlock(reason=f"grant {who}")
            self._remember("grant", name, decision.score, decision.user_id)
            log.info("GRANT %s (similarity %.3f, %d of %d frames); unlocked for %.1f s", who, decision.score,
                     decision.votes, decision.frames, seconds)
            photo = self._thumbnail(candidate)          # after the relay: the door does not wait for it
            extra = _photo(photo)
            if decision.attempt_seconds is not None:
                extra["attempt_seconds"] = round(decision.attempt_seconds, 3)
            self.record("grant", user=name, user_id=decision.user_id, similarity=decision.score, decision="grant",
                        votes=decision.votes, frames=decision.frames, **extra)
            return FrameResult(decision, candidate, "grant", name, unlocked_seconds=seconds, photo=photo)
        self.door.signal_deny()
        self._remember(kind, name, decision.score, decision.user_id if kind == "deny" else None)
        photo = self._thumbnail(candidate)
        if kind == "lockout":
            log.warning("LOCKOUT: %s", decision.reason)
            self.record("lockout", similarity=decision.score, decision="deny", reason=decision.reason,
                        seconds=self.policy.lockout_seconds, **_photo(photo))
            return FrameResult(decision, candidate, "lockout", None, decision.reason, photo=photo)
        log.info("%s %s (best similarity %.3f): %s", kind.upper(),
                 journal_name(self.cfg, decision.user_id if kind == "deny" else None, name),
                 decision.score or -1, decision.reason)     # the reason names users by id only
        user = name if kind == "deny" else None
        ids = {"user_id": decision.user_id} if kind == "deny" and decision.user_id else {}
        self.record(kind, user=user, similarity=decision.score, decision="deny", reason=decision.reason,
                    **ids, **_photo(photo))
        return FrameResult(decision, candidate, kind, user, decision.reason, photo=photo)

    # ------------------------------------------------------------------ records
    def _thumbnail(self, candidate: Candidate | None) -> str | None:
        """Keep the face this decision was made on (encrypted); its name for the access log."""
        if self.faces is None or candidate is None:
            return None
        return self.faces.keep(candidate.crop)

    def _user_name(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        user = self.store.get_user(user_id)
        return user.username if user is not None else user_id

    def _remember(self, kind: str, name: str | None, score: float | None, user_id: str | None = None) -> None:
        self.last_decision = LastDecision(kind=kind, user=name, time=self.wall_clock(),
                                          similarity=None if score is None else round(score, 3), user_id=user_id)

    def remote_unlock(self, admin_username: str | None, *, source: str = "web", admin_id: str | None = None,
                      address: str | None = None) -> float:
        """Open the door once for an admin on the web page (with their id and client address), or for
        ``source="mqtt"`` (Home Assistant's lock, no user name: the code was checked by :mod:`edge.mqtt.remote`)."""
        if admin_username and admin_id:
            who = journal_name(self.cfg, admin_id, admin_username)
        elif admin_username:
            who = admin_username if self.cfg.logging.names else "an administrator"
        else:
            who = source
        seconds = self.door.unlock(reason=f"remote unlock by {who}")
        self._remember("remote_unlock", admin_username or source, None, admin_id)
        log.info("REMOTE UNLOCK by %s from %s for %.1f s", who, address or source, seconds)
        extra: dict[str, Any] = {k: v for k, v in (("user_id", admin_id), ("address", address)) if v}
        self.record("remote_unlock", user=admin_username, decision="grant", source=source, **extra)
        return seconds

    def record(self, kind: str, *, user: str | None = None, similarity: float | None = None,
               source: str = "door", **fields: Any) -> None:
        """The access log first (a full disk must not take the door down: failures are logged, not raised),
        then an event for the listeners."""
        if self.access_log is not None:
            try:
                self.access_log.append(kind, user=user, similarity=similarity, source=source, **fields)
            except Exception as exc:
                log.error("cannot write %s to the access log: %s", kind, exc)
        self.events.emit(kind, user=user, similarity=similarity, source=source, **fields)

    def _count(self, now: float) -> None:
        self._processed.append(now)
        self.processed_frames += 1
        while self._processed and now - self._processed[0] > 2.0:
            self._processed.popleft()

    def fps(self) -> float:
        seen = list(self._processed)
        if len(seen) < 2:
            return 0.0
        return (len(seen) - 1) / max(seen[-1] - seen[0], 1e-6)


def _photo(name: str | None) -> dict[str, Any]:
    return {"photo": name} if name else {}
