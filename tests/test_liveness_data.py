"""Liveness on real frames through the real models (YuNet, face mesh, iris model): NUAA print sequences and
still live faces, live video clips, and attacks rendered from them (``edge.liveness.synth``).

Figures (APCER/BPCER over every sequence) come from scripts/bench_liveness.py; these tests pin the behaviour
that must never change: prints and replays are not judged live, a blink confirms a live person, a still face
is not confirmed by noise, a replay misses the challenge, bad input is undecided.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

import cv2

from edge.liveness import LIVE, SPOOF, UNDECIDED, Thresholds, datasets, synth

# thresholds no cue reaches, so that a judge measures every cue over a whole sequence without deciding
MEASURING = Thresholds(blink_dip=0.0, mouth=9.0, gaze=9.0, parallax=9.0, outline=9.0, glare=9.0)


def faces_of(engine, frames):
    """(time, frame, nearest face or None) as the door sees them (detection on a 320-pixel copy)."""
    out = []
    for t, frame in frames:
        found = engine.detect(frame, max_side=320)
        out.append((t, frame, max(found, key=lambda d: d.box[2] * d.box[3]) if found else None))
    return out


def judge_all(liveness_models, seen, mode, seed=0):
    judge = liveness_models.judge(mode, rng=random.Random(seed))
    return [judge.observe(frame, face, t) for t, frame, face in seen]


@pytest.fixture(scope="module")
def nuaa(liveness_dir):
    return {s.name: s for s in datasets.nuaa_sequences(liveness_dir, "live") + datasets.nuaa_sequences(liveness_dir, "spoof")}


@pytest.fixture(scope="module")
def clip_d0(liveness_dir, engine):
    """lp_d0: a man facing the camera, a blink near 2.6 s; 15 frames per second as at the door."""
    clip = next(c for c in datasets.clip_sequences(liveness_dir) if c.subject == "lp_d0")
    frames = [(t, f) for i, (t, f) in enumerate(clip.frames()) if i % 2 == 0]
    return faces_of(engine, frames)


PRINTS = ("nuaa-spoof-0005_00_00_01", "nuaa-spoof-0006_00_02_02", "nuaa-spoof-0007_01_04_02",
          "nuaa-spoof-0008_00_01_02", "nuaa-spoof-0009_01_03_02")


@pytest.mark.parametrize("mode", ["passive", "strict"])
def test_printed_photographs_moved_and_bent_are_never_live(nuaa, engine, liveness_models, mode):
    refused_as_spoof = 0
    for name in PRINTS:
        verdicts = judge_all(liveness_models, faces_of(engine, nuaa[name].frames()), mode)
        assert all(v.state != LIVE for v in verdicts), (name, verdicts[-1])
        refused_as_spoof += verdicts[-1].state == SPOOF
    assert refused_as_spoof >= 3  # most are caught by the paper's edges, not only by a missing blink


def test_a_still_live_face_is_not_confirmed_by_noise(nuaa, engine, liveness_models):
    """A live face that does not move at all: one real NUAA live frame held for 5 s at 15 fps, with the camera's
    sensor noise and a sub-pixel tremor on every frame. Whatever the models make of the noise, it is not a blink,
    a moving mouth, eyes that look around or a head turn."""
    t, frame = next(nuaa["nuaa-live-0001_00_00_01"].frames())
    rng = np.random.default_rng(3)
    frames = []
    for i in range(75):
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        moved = cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (frame.shape[1], frame.shape[0]),
                               borderMode=cv2.BORDER_REPLICATE)
        frames.append((i / 15.0, synth.camera(moved, rng)))
    seen = faces_of(engine, frames)
    assert all(face is not None for _, _, face in seen)
    for mode in ("passive", "strict"):
        verdicts = judge_all(liveness_models, seen, mode)
        assert all(v.state == UNDECIDED for v in verdicts), verdicts[-1]
    cues = verdicts[-1].cues
    assert cues["eyelid_travel"] > 0.7 and cues["blinks"] == 0 and cues["gaze_range"] < 0.03, cues
    assert cues["mouth_range"] < 0.05, cues


def test_a_live_person_who_smiles_and_blinks_is_confirmed(clip_d0, liveness_models):
    verdicts = judge_all(liveness_models, clip_d0, "passive")
    first = next(i for i, v in enumerate(verdicts) if v.state == LIVE)
    assert clip_d0[first][0] < 3.0 and verdicts[first].reason in ("the eyelids moved", "the mouth moved",
                                                                   "the eyes looked around")
    assert all(v.state == LIVE for v in verdicts[first:])  # live stays live for the track
    cues = verdicts[first].cues  # the cue named in the reason crossed its threshold
    t = Thresholds()
    assert cues["eyelid_travel"] < t.blink_dip or cues["mouth_range"] >= t.mouth or cues["gaze_range"] >= t.gaze, cues
    whole = liveness_models.judge("passive", thresholds=MEASURING)  # never decides: every cue over the clip
    cues = [whole.observe(frame, face, t) for t, frame, face in clip_d0][-1].cues
    assert cues["eyelid_travel"] < 0.3 and cues["mouth_range"] >= 0.15, cues  # the blink near 2.6 s, the smile


@pytest.fixture(scope="module")
def portrait(nuaa, engine):
    t, frame = next(nuaa["nuaa-live-0006_00_00_01"].frames())
    return synth.portrait(frame, engine.detect(frame, max_side=320)[0].box)


@pytest.mark.parametrize("family", ["print-moving", "phone-photo"])
def test_synthetic_prints_and_phone_photos_are_refused(portrait, engine, liveness_models, family):
    seen = faces_of(engine, synth.attack(family, portrait, seed=5, seconds=3.0))
    assert sum(face is not None for _, _, face in seen) > len(seen) // 2  # the attack shows a detectable face
    for mode in ("passive", "strict"):
        verdicts = judge_all(liveness_models, seen, mode)
        assert all(v.state != LIVE for v in verdicts), verdicts[-1]
    if family == "phone-photo":
        assert verdicts[-1].state == SPOOF and "outline" in verdicts[-1].reason


def test_a_video_replay_misses_the_challenge_but_a_person_answers_it(clip_d0, liveness_models):
    """Strict mode: the replay's blink (2.6 s) comes when it was recorded, not when asked; a person who blinks
    0.45 s after each of the two requests passes."""
    rng_seed = next(s for s in range(100) if random.Random(s).uniform(0.5, 1.5) < 0.9)  # asks before 1.4 s
    replay = judge_all(liveness_models, clip_d0, "strict", seed=rng_seed)
    assert all(v.state != LIVE for v in replay) and any(v.asking for v in replay)
    assert replay[-1].cues["blinks"] >= 1 and replay[-1].cues["challenge_passed"] == 0

    judge = liveness_models.judge("strict", rng=random.Random(rng_seed))
    blink_at = 2.6
    now, i, answered, verdict = 0.0, 0, [], None
    while i < len(clip_d0) and now < 6.0:
        t, frame, face = clip_d0[i]
        verdict = judge.observe(frame, face, now)
        if verdict.asking and (not answered or now - answered[-1] > 1.0):  # the LEDs ask; a blink 0.45 s later
            i = min(range(len(clip_d0)), key=lambda k: abs(clip_d0[k][0] - (blink_at - 0.45)))
            answered.append(now)
        else:
            i += 1
            answering = answered and now - answered[-1] <= 1.0
            if i >= len(clip_d0) or (clip_d0[i][0] >= blink_at - 0.45 and not answering):
                i = 0                           # eyes open, waiting: the part of the clip before its blink
        now += 1 / 15
        if verdict.state == LIVE:
            break
    assert len(answered) == 2 and verdict.state == LIVE and verdict.reason == "blinked when asked"
    assert verdict.cues["challenge_passed"] == 2


def test_bad_inputs_are_undecided(clip_d0, liveness_models):
    t, frame, face = clip_d0[0]
    judge = liveness_models.judge("passive")
    assert judge.observe(frame, None, 0.0).reason == "no face in this frame"
    single = judge.observe(frame, face, 0.1)
    assert single.state == UNDECIDED                                   # a single frame proves nothing
    H, W = frame.shape[:2]
    edge = SimpleNamespace(box=(W - 50, 10, 80, 90), landmarks=face.landmarks)
    assert judge.observe(frame, edge, 0.2).reason == "the face is at the edge of the frame"
    blank = np.full_like(frame, 128)
    assert judge.observe(blank, face, 0.3).reason == "no face landmarks in this frame"
    assert judge.observe(frame[..., 0], face, 0.4).reason == "the frame is not a BGR image"
    assert judge.observe(frame, face, 0.05).reason == "frame time did not advance"
    assert all(v.state == UNDECIDED for v in [judge.observe(frame, face, 0.5)])
    with pytest.raises(ValueError, match="passive"):
        liveness_models.judge("off")
