"""LivenessJudge: one per face track; frames in, a verdict out (live, spoof or undecided).

Fusion rule, in two sentences: any deny cue (``DENY_CUES``: a screen or paper outline around the face, a large
glare; with an illuminator, a face that reflects its pulses evenly like paper) seen in enough frames of the track
makes it "spoof" for the rest of the track. Otherwise the track is "live" once the mode's confirm cue has been seen
over at least ``min_frames`` usable frames - passive: any of ``PASSIVE_CONFIRM`` (eyelids that moved, a moving
mouth, eyes that looked around, the nose's parallax in two head turns, face-like shading under the illuminator's
pulses); strict: blinks that start inside the challenge windows - and, with an illuminator, once the face follows
its pulses (a screen does not); "undecided" until then (undecided is never live).

A new cue is one entry: a deny cue is a function (frame, face box) -> score in [0, 1] with its threshold, frame
count and refusal reason in ``DENY_CUES`` (its threshold fields in ``Thresholds``); a passive confirm cue is a test
of the judge's state in ``PASSIVE_CONFIRM``. Once the track is decided nothing more is computed (cost): a live or
spoof verdict stands for the rest of the track.

Bad input (no face, no landmarks, a face at the frame's edge, a single frame) gives "undecided" with the reason.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import blink as blink_cue
from . import screen
from .illumination import IlluminationResponse
from .challenge import Challenge
from .eyes import EyeModel
from .gaze import MOTION as GAZE_MOTION, GazeMotion
from .mesh import FaceMesh
from .motion import ParallaxTracker
from .mouth import MOTION as MOUTH_MOTION, MouthMotion, mouth_opening

log = logging.getLogger(__name__)

MODES = ("off", "passive", "strict")
LIVE, SPOOF, UNDECIDED = "live", "spoof", "undecided"


@dataclass(frozen=True)
class Thresholds:
    """Every number the fusion rule uses; the defaults were chosen on the training split of
    ``scripts/bench_liveness.py`` (which prints the values it measures)."""

    blink_dip: float = blink_cue.DIP  # passive: an eye closes below this share of its open level ("eyelids")
    challenge_dip: float = blink_cue.CHALLENGE_DIP  # strict: the blink that answers a request (timed: looser)
    parallax: float = 0.542         # nose residual over eye distance that counts as depth
    parallax_turns: int = 2         # how many turns must show it (passive)
    mouth: float = MOUTH_MOTION     # range of the inner-lip gap over the nose length (passive)
    gaze: float = GAZE_MOTION       # range of the iris offset in the eye over the eye width (passive)
    min_frames: int = 5             # usable frames before "live" (the deny cues have looked at least twice)
    outline: float = 1.0            # face framed on all four sides ...
    outline_frames: int = 2         # ... in this many frames
    glare: float = 0.12             # largest saturated blob, fraction of the face box ...
    glare_frames: int = 2
    deny_every: int = 2             # deny cues are computed on every n-th usable frame (cost) ...
    parallax_every: int = 2         # ... and the parallax tracker on every n-th, the frames in between
    light_follow: float = 0.6       # illuminator: brightness correlates with the pattern at least this ...
    light_response: float = 0.1     # ... and the LED adds at least this share of the face's brightness
    light_shading: float = 0.08     # 3-D shading that confirms (passive), and at least light_snr times ...
    light_snr: float = 2.0          # ... what noise and movement alone would show, measured on frames ...
    light_max_noise: float = 0.1    # ... steady enough that this noise floor is not exceeded ...
    light_flat: float = 0.04        # ... and below which (noise floor below it too) the face is flat: spoof
    light_pairs: int = 4            # lit/unlit pairs before the shading is judged


@dataclass(frozen=True)
class Verdict:
    """``state``: live / spoof / undecided; ``cues``: each cue's value so far (for the access log);
    ``reason``: one sentence; ``asking``: strict mode wants the door to signal "blink now"."""

    state: str
    cues: dict = field(default_factory=dict)
    reason: str = ""
    asking: bool = False

    @property
    def live(self) -> bool:
        return self.state == LIVE


@dataclass(frozen=True)
class DenyCue:
    """A sign that the face is on a screen or paper: ``score(frame_bgr, box) -> [0, 1]``; the track is a spoof once
    the score reached ``Thresholds.<name>`` in ``Thresholds.<name>_frames`` looks."""

    name: str
    score: Callable[[np.ndarray, tuple], float]
    reason: str


DENY_CUES: tuple[DenyCue, ...] = (
    DenyCue("outline", screen.outline_score, "a screen or paper outline frames the face"),
    DenyCue("glare", screen.glare_score, "a screen-like glare covers the face"),
)


@dataclass(frozen=True)
class ConfirmCue:
    """Evidence of a live face for passive mode: ``seen(judge) -> bool`` over the track so far."""

    name: str
    seen: Callable[["LivenessJudge"], bool]
    reason: str


class LivenessJudge:
    """Judge one face track. ``mesh`` and ``eyes`` are the loaded models (shared by the judges of one thread);
    ``rng`` chooses the challenge moments (a ``random.SystemRandom`` by default)."""

    def __init__(self, *, mode: str = "passive", mesh: FaceMesh, eyes: EyeModel,
                 thresholds: Thresholds = Thresholds(), rng: random.Random | None = None,
                 illumination: bool = False):
        if mode not in ("passive", "strict"):
            raise ValueError(f"liveness mode must be 'passive' or 'strict' for a judge, not {mode!r}")
        self.mode = mode
        self.t = thresholds
        self._mesh, self._eyes = mesh, eyes
        self._blinks = blink_cue.BlinkDetector(
            dip=thresholds.challenge_dip if mode == "strict" else thresholds.blink_dip)
        self._travel = blink_cue.EyelidTravel()
        self._gaze = GazeMotion()
        self._parallax = ParallaxTracker()
        self._mouth = MouthMotion()
        self._challenge = Challenge(rng=rng) if mode == "strict" else None
        self._light = IlluminationResponse() if illumination else None     # an illuminator is fitted
        self._frames = 0
        self._usable = 0
        self._blink_count = 0
        self._parallax_hits = 0
        self._parallax_max = 0.0
        self._deny_counts = {cue.name: 0 for cue in DENY_CUES}
        self._deny_max = {cue.name: 0.0 for cue in DENY_CUES}
        self._state = UNDECIDED
        self._reason = "not enough frames yet"
        self._last_time: float | None = None

    # -- the one public step -------------------------------------------------------------------------------

    def observe(self, frame_bgr, face, now: float, *, lit: bool | None = None) -> Verdict:
        """One frame of the track and the face found in it (anything with ``box`` (x, y, w, h) and ``landmarks``
        (5, 2), e.g. a ``Face``; ``None`` when no face was found); ``now`` in seconds (monotonic); ``lit``: the
        illuminator's state during the frame (None: no illuminator, or it changed during the exposure)."""
        self._frames += 1
        if self._state != UNDECIDED:  # decided: the verdict stands for the track, nothing more to compute
            return self._verdict(now)
        problem = self._input_problem(frame_bgr, face)
        if problem:
            self._parallax.reset()
            return self._verdict(now, problem)
        if self._last_time is not None and now <= self._last_time:
            return self._verdict(now, "frame time did not advance")
        self._last_time = now
        mesh = self._mesh(frame_bgr, face.box, face.landmarks)
        if mesh is None:
            self._parallax.reset()
            return self._verdict(now, "no face landmarks in this frame")
        self._usable += 1
        if self._challenge is not None:
            self._challenge.start(now)
        self._deny(frame_bgr, face.box)
        if self._light is not None and lit is not None:
            self._light.add(frame_bgr, face.box, lit, face.landmarks)
            self._deny_light()
        if self._state == SPOOF:
            return self._verdict(now)
        eyes = self._eyes.read(frame_bgr, mesh.points)
        openings = blink_cue.eye_openings(eyes.left, eyes.right, mesh.points)
        self._travel.update(openings, now)
        self._gaze.update(eyes.gaze)
        started = self._blinks.update(openings, now)
        if started is not None:
            self._blink_count += 1
            if self._challenge is not None:
                self._challenge.observe_blink(started)
        self._mouth.update(mouth_opening(mesh.points))
        measured = None
        if self._usable % max(1, self.t.parallax_every) == 0:
            measured = self._parallax.update(frame_bgr, mesh.points, mesh.eye_distance, now)
        if measured is not None:
            self._parallax_max = max(self._parallax_max, measured.residual)
            if measured.residual >= self.t.parallax:
                self._parallax_hits += 1
        if self._challenge is not None:
            self._challenge.update(now)
        self._decide()
        return self._verdict(now)

    # -- parts ---------------------------------------------------------------------------------------------

    @staticmethod
    def _input_problem(frame_bgr, face) -> str:
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 \
                or frame_bgr.dtype != np.uint8 or min(frame_bgr.shape[:2]) < 32:
            return "the frame is not a BGR image"
        if face is None:
            return "no face in this frame"
        if getattr(face, "landmarks", None) is None or np.asarray(face.landmarks).shape != (5, 2):
            return "no face landmarks in this frame"
        x, y, w, h = (float(v) for v in face.box)
        H, W = frame_bgr.shape[:2]
        if w < 24 or h < 24:
            return "the face is too small"
        if x < 1 or y < 1 or x + w > W - 1 or y + h > H - 1:
            return "the face is at the edge of the frame"
        return ""

    def _deny(self, frame_bgr, box) -> None:
        if (self._usable - 1) % max(1, self.t.deny_every):
            return
        for cue in DENY_CUES:
            value = float(cue.score(frame_bgr, box))
            self._deny_max[cue.name] = max(self._deny_max[cue.name], value)
            if value >= getattr(self.t, cue.name):
                self._deny_counts[cue.name] += 1
                if self._deny_counts[cue.name] >= getattr(self.t, f"{cue.name}_frames"):
                    self._state, self._reason = SPOOF, cue.reason
                    return

    def _light_numbers(self):
        return self._light.numbers() if self._light is not None else None

    def _light_follows(self, n) -> bool:
        return n is not None and n.follow >= self.t.light_follow and n.response >= self.t.light_response

    def _deny_light(self) -> None:
        n = self._light_numbers()
        if self._light_follows(n) and n.pairs >= self.t.light_pairs and \
                max(n.shading, n.noise) < self.t.light_flat:
            self._state, self._reason = SPOOF, "the face reflects the door's light evenly, like paper"

    def _light_confirms(self) -> bool:
        light = self._light_numbers()
        return light is not None and light.pairs >= self.t.light_pairs and light.noise <= self.t.light_max_noise \
            and light.shading >= max(self.t.light_shading, self.t.light_snr * light.noise)

    def _decide(self) -> None:
        if self._state != UNDECIDED:
            return
        if self._usable < self.t.min_frames:
            self._reason = "not enough frames yet"
            return
        light = self._light_numbers()
        if self._light is not None and not self._light_follows(light):
            self._reason = "the face has not followed the door's light yet"
            return
        if self._challenge is not None:
            if self._challenge.done:
                self._state, self._reason = LIVE, "blinked when asked"
            elif self._challenge.exhausted:
                self._reason = "did not blink when asked"
            else:
                self._reason = "waiting for a blink on request"
            return
        for cue in PASSIVE_CONFIRM:
            if cue.seen(self):
                self._state, self._reason = LIVE, cue.reason
                return
        self._reason = "no blink, mouth, eye movement or head turn seen yet"

    def cues(self) -> dict[str, float]:
        """Every cue's value so far (numbers only, for the access log)."""
        out = {"frames": float(self._frames), "usable_frames": float(self._usable),
               "blinks": float(self._blink_count), "blink_dip": round(float(self._blinks.lowest), 3),
               "parallax_max": round(self._parallax_max, 4), "parallax_turns": float(self._parallax_hits),
               "mouth_range": round(self._mouth.range, 3), "eyelid_travel": round(self._travel.ratio, 3),
               "gaze_range": round(self._gaze.range, 3)}
        for name, value in self._deny_max.items():
            out[f"{name}_max"] = round(float(value), 3)
        light = self._light_numbers()
        if light is not None:
            out.update(light_follow=round(light.follow, 3), light_response=round(light.response, 3),
                       light_shading=round(light.shading, 3), light_noise=round(min(light.noise, 99.0), 3))
        if self._challenge is not None:
            out["challenge_passed"] = float(self._challenge.passed)
            out["challenge_failed"] = float(self._challenge.failed)
        return out

    def _verdict(self, now: float, problem: str = "") -> Verdict:
        asking = bool(self._challenge is not None and self._state == UNDECIDED and self._challenge.asking(now))
        reason = self._reason if self._state != UNDECIDED or not problem else problem
        return Verdict(state=self._state, cues=self.cues(), reason=reason, asking=asking)


PASSIVE_CONFIRM: tuple[ConfirmCue, ...] = (
    ConfirmCue("eyelids", lambda j: j._travel.ratio < j.t.blink_dip, "the eyelids moved"),
    ConfirmCue("mouth", lambda j: j._mouth.range >= j.t.mouth, "the mouth moved"),
    ConfirmCue("gaze", lambda j: j._gaze.range >= j.t.gaze, "the eyes looked around"),
    ConfirmCue("parallax", lambda j: j._parallax_hits >= j.t.parallax_turns, "the face showed depth when it turned"),
    ConfirmCue("light", lambda j: j._light_confirms(), "the face's shading followed the door's light"),
)


class LivenessModels:
    """The face mesh and iris models loaded once (hash-checked), to build judges from."""

    def __init__(self, *, models_dir: str | Path, num_threads: int = 2):
        self.mesh = FaceMesh(models_dir=models_dir, num_threads=num_threads)
        self.eyes = EyeModel(models_dir=models_dir, num_threads=num_threads)

    def judge(self, mode: str, **kwargs) -> LivenessJudge:
        return LivenessJudge(mode=mode, mesh=self.mesh, eyes=self.eyes, **kwargs)

    def close(self) -> None:
        self.mesh.close()
        self.eyes.close()

    def __enter__(self) -> "LivenessModels":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
