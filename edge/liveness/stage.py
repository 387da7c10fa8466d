"""The door's liveness stage: one :class:`~edge.liveness.judge.LivenessJudge` per face track, and the answer to
"may this grant stand?".

A track is the same face staying in view: it ends when no face is seen for ``track_gap`` seconds or the face
jumps (its centre moves by more than its own width between two frames: someone else stepped in). A new track
gets a new judge, so nothing one person did (a blink) carries over to the next.

:meth:`grant` answers for the face that voted: ``None`` (live: let it stand), ``WAIT`` (undecided and the track
is younger than ``window_seconds``: hold the grant) or a refusal reason ("not confirmed live", or the deny cue
that made it a spoof). With mode "off" there is no stage at all (the door behaves exactly as without liveness).

With an ``illuminator`` (:class:`edge.illuminator.Illuminator`, ``[liveness] illuminator_pin``) the stage labels
each frame with the LED's state during its exposure (from the frame's capture time), gives it to the judge, and
steps the LED's random pattern while a face is in view; with no face in view the LED is off.
"""

from __future__ import annotations

import logging
import random

import numpy as np

from .judge import LIVE, SPOOF, UNDECIDED, LivenessJudge, LivenessModels, Thresholds, Verdict

log = logging.getLogger(__name__)

WAIT = "wait"
SPOOF_REFUSAL = "presentation attack"
STRICT_MIN_WINDOW = 6.0
NOT_LIVE = "not confirmed live"


class LivenessStage:
    """``LivenessStage(mode="passive", window_seconds=3.0, models=LivenessModels(...))``; feed every frame with
    :meth:`observe`, ask :meth:`grant` when the recognition vote says grant."""

    def __init__(self, *, mode: str, window_seconds: float, models: LivenessModels,
                 thresholds: Thresholds = Thresholds(), rng: random.Random | None = None, track_gap: float = 1.0,
                 illuminator=None):
        if mode not in ("passive", "strict"):
            raise ValueError(f"a liveness stage runs in mode 'passive' or 'strict', not {mode!r}")
        if window_seconds <= 0:
            raise ValueError("liveness window_seconds must be positive")
        self.mode = mode
        # strict: two requests at random moments and the blinks take up to about 5.5 s
        self.window_seconds = max(float(window_seconds), STRICT_MIN_WINDOW) if mode == "strict" \
            else float(window_seconds)
        self.models = models
        self.thresholds = thresholds
        self.rng = rng or random.SystemRandom()
        self.track_gap = track_gap
        self.illuminator = illuminator
        self._judge: LivenessJudge | None = None
        self.track = 0          # +1 for every new track (a held grant belongs to one)
        self._started = 0.0
        self._last_seen: float | None = None
        self._last_box: tuple[float, ...] | None = None
        self._last_face_track: int | None = None     # the recognition track (edge.recognition.track) of the face
        self.verdict = Verdict(state=UNDECIDED, reason="no face yet")

    def reset(self) -> None:
        """End the track (after a grant or a refusal, so the next attempt starts afresh)."""
        if self._judge is not None:
            self.track += 1
        self._judge = None
        self._last_box = None
        self._last_seen = None
        self._last_face_track = None
        self.verdict = Verdict(state=UNDECIDED, reason="no face yet")

    def _same_track(self, box, now: float, face_track=None) -> bool:
        if self._judge is None or self._last_seen is None or now - self._last_seen > self.track_gap:
            return False
        if face_track is not None and face_track != self._last_face_track:
            return False           # the recognition track changed: another person's face, even in the same place
        if self._last_box is None:
            return True
        (x0, y0, w0, h0), (x1, y1, w1, h1) = self._last_box, box
        jump = np.hypot((x1 + w1 / 2) - (x0 + w0 / 2), (y1 + h1 / 2) - (y0 + h0 / 2))
        return jump <= max(w0, w1)

    def observe(self, frame_bgr, face, now: float, *, taken: float | None = None) -> Verdict:
        """One frame and its nearest face (``None`` if none): the track's verdict after it. ``taken``: when the
        camera delivered the frame (the illuminator's clock; default ``now``)."""
        lit = None
        if self.illuminator is not None:
            lit = self.illuminator.lit_at(now if taken is None else taken)
            if face is None:
                self.illuminator.stop()
            else:
                self.illuminator.step()          # the next frames see the pattern's next state
        if face is not None:
            face_track = getattr(face, "track_id", None)
            if not self._same_track(face.box, now, face_track):
                self._judge = LivenessJudge(mode=self.mode, mesh=self.models.mesh, eyes=self.models.eyes,
                                            thresholds=self.thresholds, rng=self.rng,
                                            illumination=self.illuminator is not None)
                self.track += 1
                self._started = now
            self._last_seen = now
            self._last_box = tuple(float(v) for v in face.box)
            self._last_face_track = face_track
        elif self._judge is None or (self._last_seen is not None and now - self._last_seen > self.track_gap):
            self.reset()
            return self.verdict
        assert self._judge is not None
        self.verdict = self._judge.observe(frame_bgr, face, now, lit=lit)
        return self.verdict

    def lights_off(self) -> None:
        """No frame came (camera stalled): the illuminator, if any, goes off until a face is seen again."""
        if self.illuminator is not None:
            self.illuminator.stop()

    def track_age(self, now: float) -> float:
        return 0.0 if self._judge is None else now - self._started

    def grant(self, now: float) -> str | None:
        """None: the voting face is live; WAIT: undecided within the window; else the reason to refuse."""
        state = self.verdict.state
        if state == LIVE:
            return None
        if state == SPOOF:
            return f"{SPOOF_REFUSAL}: {self.verdict.reason}"
        if self._judge is not None and self.track_age(now) < self.window_seconds:
            return WAIT
        return NOT_LIVE

    @property
    def undecided(self) -> bool:
        """A face is in view and not yet judged (the door blinks its green LED)."""
        return self._judge is not None and self.verdict.state == UNDECIDED
