"""The door loop: frame -> faces -> candidate -> vote -> grant checks -> action, one frame at a time.

Stages of :meth:`DoorLoop.process` (each a method, in this order):

1. ``_candidate``: the nearest face, embedded, followed in its track (:mod:`edge.recognition.track`) and the
   track's quality-weighted mean of its best frames ranked against the gallery;
2. ``decider.observe``: the k-of-n vote, margin, cooldown and lockout (:mod:`edge.decision`, pure logic);
3. liveness (``[liveness] mode`` passive or strict; :mod:`edge.liveness`): every frame's nearest face goes to
   the track's judge; a ``grant`` vote stands only when that face is judged live. While it is undecided the
   grant is held (green LED blinking) for up to ``liveness.window_seconds`` from the face's first frame, then
   refused "not confirmed live"; a spoof verdict refuses it at once. Mode "off": no stage, no change;
4. ``_check_grant``: for a grant that stands, every registered :data:`GrantCheck` in turn; the first that
   returns a reason turns the grant into a deny. Built in: the user must still be active (re-read from the
   store: a user disabled a moment ago must not get in); ``loop.add_grant_check(check)`` adds more;
5. ``_act``: relay/LEDs, the decision's face thumbnail (:mod:`edge.eventfaces`, encrypted; after the relay),
   the access log (synchronous: the audit record) and an :class:`edge.events.Event` for the listeners
   (asynchronous, never blocks).

After each frame with a face, :attr:`DoorLoop.last_sighting` says what the door made of it (box, best match,
whether the frame votes, the liveness verdict); the live view (:mod:`edge.liveview`) draws it in the web thread,
so watching costs the door nothing.

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
from .decision import Candidate, Decider, Decision, Policy, candidate_from_track, door_policy, votes_for
from .errors import EdgeError
from .eventfaces import EventFaces
from .events import EventHub
from .liveness.stage import NOT_LIVE, SPOOF_REFUSAL, WAIT, LivenessStage
from .liveview import Sighting
from .recognition.match import Ranker
from .recognition.track import Tracker
from .lognames import journal_name
from .status import LastDecision

log = logging.getLogger(__name__)

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
    liveness: str | None = None        # live / spoof / undecided (None: liveness off)


@dataclass
class _HeldGrant:
    """A grant vote waiting for the liveness verdict of the same face track."""

    decision: Decision
    candidate: Candidate | None
    frame: np.ndarray | None
    track: int


GrantCheck = Callable[[Decision, Optional[Candidate], Optional[np.ndarray]], Optional[str]]
"""A last word before the relay: ``check(decision, candidate, frame)`` returns a reason to refuse, or None to let
the grant stand. ``frame`` is the frame that completed the vote; ``candidate.box``/``crop`` the face in it."""


class DoorLoop:
    """Owns the decision state and acts on the door. Not thread-safe: one thread calls :meth:`process`."""

    def __init__(self, cfg: Config, *, engine: Any, store: Any, access_log: Any, door: Any, events: EventHub,
                 clock: Callable[[], float], wall_clock: Callable[[], float],
                 faces: EventFaces | None = None,
                 make_liveness: Callable[[Config], LivenessStage | None] | None = None):
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
        self.tracker = Tracker()
        self._load_gallery()                        # the threshold depends on how many people are enrolled
        self.threshold_source = ""
        self.policy = self._make_policy()
        self.decider = Decider(self.policy)
        self.last_decision: LastDecision | None = None
        self.last_candidate: Candidate | None = None
        self.last_sighting: Sighting | None = None      # for the live view: drawn by the web thread
        self._now = 0.0                                 # the frame being processed (door clock)
        self._vote_at = 0.0                             # when the last grant vote came (a held grant unlocks later)
        self.processed_frames = 0
        self._processed: deque[float] = deque()
        self._make_liveness = make_liveness
        self.liveness: LivenessStage | None = make_liveness(cfg) if make_liveness is not None else None
        self._liveness_cfg = cfg.liveness
        self._held: _HeldGrant | None = None
        self._asking = False

    # ------------------------------------------------------------------ settings and gallery
    def _make_policy(self) -> Policy:
        """The settings in force; the threshold from the security level for the people enrolled now (or the
        administrator's explicit threshold)."""
        policy, self.threshold_source = door_policy(
            self.cfg.decision, self.store.settings, security=getattr(self.engine, "security", None),
            model_threshold=self.engine.threshold, people=self.user_count)
        return policy

    def _load_gallery(self) -> None:
        self.gallery_revision = self.store.revision
        gallery = self.store.gallery(self.engine.model_id)
        self._ranker = Ranker.for_gallery(gallery, aggregation=self.cfg.decision.aggregation,
                                          centre=getattr(self.engine, "score_centre", None))
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
            log.info("decision policy now %s (threshold: %s)", policy, self.threshold_source)
        self.decider.update_policy(policy)
        self.policy = policy
        if self._make_liveness is not None and self.cfg.liveness != self._liveness_cfg:
            try:
                stage = self._make_liveness(self.cfg)
            except EdgeError as exc:  # e.g. the liveness models are missing: keep the check that runs
                log.error("liveness settings not applied: %s", exc)
            else:
                self.liveness, self._held = stage, None
            self._liveness_cfg = self.cfg.liveness

    def add_grant_check(self, check: GrantCheck) -> None:
        """Run ``check`` on every grant vote, after the built-in ones (liveness goes here)."""
        self.grant_checks.append(check)

    # ------------------------------------------------------------------ the stages
    def idle(self, now: float | None = None) -> Decision:
        """No frame came: the vote learns that nobody is in view (an attempt ends after its window)."""
        if self._reload.is_set():
            self._apply_reload()
        now = self.clock() if now is None else now
        if self._held is not None and self.liveness is not None:
            self.liveness.observe(None, None, now)
            self._settle_held(now)
        if self.liveness is not None:
            self.liveness.lights_off()
        if self.door is not None and self.liveness is not None:
            self.door.signal_waiting(False)
        return self.decider.observe(None, now)

    def process(self, frame: np.ndarray, now: float | None = None, *, taken: float | None = None) -> FrameResult:
        """One frame through every stage; see the module docstring. ``taken``: when the camera delivered it
        (labels the frame for the liveness illuminator; default ``now``)."""
        if self._reload.is_set():
            self._apply_reload()
        now = self.clock() if now is None else now
        candidate = self._candidate(frame, now)
        decision = self.decider.observe(candidate, now)
        self.last_candidate = candidate
        self._now = now
        if decision.kind == "grant":
            self._vote_at = now
        if self.liveness is not None:
            verdict = self.liveness.observe(frame, candidate, now, taken=taken)
            self._signal(verdict, candidate)
        if candidate is not None:
            self.last_sighting = self._sighting(now, candidate)
        if self.liveness is not None:
            if self._held is not None:
                settled = self._settle_held(now)
                if settled is not None:
                    self._count(now)
                    return settled
            if decision.kind == "grant":
                answer = self.liveness.grant(now)
                if answer == WAIT:
                    self._held = _HeldGrant(decision, candidate, frame, self.liveness.track)
                    log.info("grant vote for %s held until the face is confirmed live",
                             journal_name(self.cfg, decision.user_id, self._user_name(decision.user_id)))
                    self._count(now)
                    return FrameResult(decision, candidate, reason="waiting for liveness",
                                       liveness=verdict.state)
                if answer is not None:
                    result = self._act(decision, candidate, answer)
                    self._after_grant_vote()
                    self._count(now)
                    return result
        refusal = self._check_grant(decision, candidate, frame) if decision.kind == "grant" else None
        result = self._act(decision, candidate, refusal)
        if decision.kind == "grant":
            self._after_grant_vote()
        self._count(now)
        return result

    # ------------------------------------------------------------------ liveness
    def _signal(self, verdict, candidate: Candidate | None) -> None:
        """Green LED blinking while a face in view is undecided; LEDs and buzzer at each strict request."""
        if self.door is None:
            return
        self.door.signal_waiting(candidate is not None and self.liveness is not None and self.liveness.undecided)
        if verdict.asking and not self._asking:
            self.door.signal_request()
        self._asking = verdict.asking

    def _settle_held(self, now: float) -> FrameResult | None:
        """The held grant once its track is judged: granted (live), refused (spoof, not live in time, the face
        left) or None (still waiting)."""
        held, stage = self._held, self.liveness
        if held is None or stage is None:
            return None
        answer = stage.grant(now) if stage.track == held.track else "not confirmed live (the face left)"
        if answer == WAIT:
            return None
        self._held = None
        refusal = answer if answer is not None else self._check_grant(held.decision, held.candidate, held.frame)
        result = self._act(held.decision, held.candidate, refusal)
        self._after_grant_vote()
        return result

    def _after_grant_vote(self) -> None:
        """A grant vote was acted on: the next attempt starts with a new liveness track."""
        if self.liveness is not None:
            self.liveness.reset()

    def _liveness_fields(self) -> dict:
        if self.liveness is None:
            return {}
        verdict = self.liveness.verdict
        return {"liveness": verdict.state, "liveness_reason": verdict.reason,
                "liveness_cues": dict(verdict.cues)}

    def _candidate(self, frame: np.ndarray, now: float) -> Candidate | None:
        """The nearest face, followed in its track; scored by the track's best frames together."""
        faces = self.engine.faces(frame, limit=1, detect_max_side=self.cfg.recognition.frame_detect_side)
        return candidate_from_track(faces, self.tracker, self._rank, now, min_face_px=self.policy.min_face_px)

    def _rank(self, embedding: np.ndarray, top: int = 2) -> list:
        ranker = self._ranker
        return ranker(embedding, top=top) if ranker is not None else []

    def _check_grant(self, decision: Decision, candidate: Candidate | None, frame: np.ndarray | None) -> str | None:
        for check in self.grant_checks:
            reason = check(decision, candidate, frame)
            if reason:
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
        state = self.liveness.verdict.state if self.liveness is not None else None
        if kind in QUIET_KINDS:
            return FrameResult(decision, candidate, liveness=state)
        live = self._liveness_fields()
        name = self._user_name(decision.user_id)
        if kind == "grant" and refusal:
            # a presentation attack (liveness said spoof) is its own kind in the log and for listeners (MQTT)
            logged = "spoof" if refusal.startswith(SPOOF_REFUSAL) else "deny"
            self.door.signal_deny()
            log.warning("%s %s: %s", logged.upper(), journal_name(self.cfg, decision.user_id, name), refusal)
            self._remember(logged, name, decision.score, decision.user_id)
            photo = self._thumbnail(candidate)
            self.record(logged, user=name, user_id=decision.user_id, similarity=decision.score, decision="deny",
                        reason=refusal, **_photo(photo), **live)
            if self.liveness is not None and candidate is not None and (
                    logged == "spoof" or refusal.startswith(NOT_LIVE)) and \
                    self.decider.refused_after_vote(candidate.embedding, self.clock()):
                log.warning("LOCKOUT: %d liveness refusals of this face", self.policy.lockout_after)
                self.record("lockout", similarity=decision.score, decision="deny",
                            reason=f"{self.policy.lockout_after} refusals in a row (liveness); locked out for "
                                   f"{self.policy.lockout_seconds:g} s", seconds=self.policy.lockout_seconds)
            return FrameResult(decision, candidate, "deny", name, refusal, photo=photo, liveness=state)
        if kind == "grant":
            who = journal_name(self.cfg, decision.user_id, name)
            seconds = self.door.unlock(reason=f"grant {who}")
            self._remember("grant", name, decision.score, decision.user_id)
            log.info("GRANT %s (similarity %.3f, %d of %d frames); unlocked for %.1f s", who, decision.score,
                     decision.votes, decision.frames, seconds)
            photo = self._thumbnail(candidate)          # after the relay: the door does not wait for it
            extra = _photo(photo)
            if decision.attempt_seconds is not None:    # first frame to unlock, a liveness hold included
                extra["attempt_seconds"] = round(decision.attempt_seconds + max(0.0, self._now - self._vote_at), 3)
            self.record("grant", user=name, user_id=decision.user_id, similarity=decision.score, decision="grant",
                        votes=decision.votes, frames=decision.frames, **extra, **live)
            return FrameResult(decision, candidate, "grant", name, unlocked_seconds=seconds, photo=photo,
                               liveness=state)
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
                    **ids, **_photo(photo), **live)
        return FrameResult(decision, candidate, kind, user, decision.reason, photo=photo, liveness=state)

    # ------------------------------------------------------------------ records
    def _sighting(self, now: float, candidate: Candidate) -> Sighting:
        """What the live view draws: the face, its best match, whether this frame votes, the liveness verdict."""
        return Sighting(time=now, box=candidate.box, user_id=candidate.user_id, score=candidate.score,
                        passes=votes_for(self.policy, candidate),
                        liveness=self.liveness.verdict.state if self.liveness is not None else None)

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
        then an event for the listeners with the logged time (Home Assistant and the log agree however long
        the write took)."""
        logged = None
        if self.access_log is not None:
            try:
                logged = self.access_log.append(kind, user=user, similarity=similarity, source=source, **fields)
            except Exception as exc:
                log.error("cannot write %s to the access log: %s", kind, exc)
        at = logged["time"] if logged else None
        self.events.emit(kind, user=user, similarity=similarity, source=source, at=at, **fields)

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
