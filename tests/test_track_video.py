"""The door on video: a person enrolled from one part of a real clip is recognised from another part of it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.recognition import load_image
from edge.recognition.match import Ranker
from edge.recognition.security import Security, door_threshold
from edge.decision import Decider, Policy, candidate_from_track
from edge.recognition.track import Tracker

from conftest import REPO_ROOT, missing

CLIPS = Path(os.environ.get("EDGE_FACE_LIVENESS_DIR", REPO_ROOT.parent / "shared" / "liveness")) / "clips"
DOOR_FPS = 10.0


@pytest.fixture(scope="module")
def clips():
    if not CLIPS.is_dir():
        missing(f"video clips not found at {CLIPS} (set EDGE_FACE_LIVENESS_DIR)")
    return CLIPS


def clip_faces(engine, path: Path, wanted):
    """(time in s, Face) of the nearest face in the frames ``wanted(time, duration)`` selects, the duration."""
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
    duration = float(cap.get(cv2.CAP_PROP_FRAME_COUNT)) / fps
    out, i = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if wanted(i / fps, duration):
                faces = engine.faces(frame, limit=1, detect_max_side=640)
                if faces:
                    out.append((i / fps, faces[0]))
            i += 1
    finally:
        cap.release()
    assert out, f"no face found in {path.name}"
    return out, duration


_SEEN: dict = {}


def enrolment_and_visit(engine, path: Path):
    if path not in _SEEN:
        _SEEN[path] = _enrolment_and_visit(engine, path)
    return _SEEN[path]


def _enrolment_and_visit(engine, path: Path):
    """Three frames spread over the first 40% of the clip, and the door's frames (10 a second) for 1.5 s
    from the middle on."""
    frames, duration = clip_faces(engine, path, lambda t, d: t < 0.4 * d and round(t * 25) % 10 == 0
                                  or 0.5 * d <= t < 0.5 * d + 1.5)
    early = [f for t, f in frames if t < 0.4 * duration]
    enrol = np.stack([early[i].embedding for i in np.linspace(0, len(early) - 1, 3).astype(int)])
    return enrol, [(t, f) for t, f in frames if t >= 0.5 * duration], 0.5 * duration


@pytest.fixture(scope="module")
def security(models_dir):
    import json

    manifest = json.loads((models_dir / "manifest.json").read_text())
    return Security.from_manifest(next(m for m in manifest["models"] if m["id"] == manifest["default_model"]))


@pytest.fixture(scope="module")
def distractors(engine, faces_dir):
    """Twenty LFW people enrolled with 3 photographs each: the rest of the household, and then some."""
    folders = sorted(d for d in (faces_dir / "lfw_view1").iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 5)
    out = {}
    for d in folders[:20]:
        rows = [engine.faces(load_image(p), limit=1) for p in sorted(d.glob("*.jpg"))[:3]]
        out[d.name] = np.stack([r[0].embedding for r in rows if r])
    return out


def visit(frames, rank, threshold, start):
    """Replay the frames from ``start`` s on at the door's rate through the door's own track candidates and
    Decider (configured margin and k of n); (granted user, seconds after the face appeared)."""
    policy = Policy(threshold=threshold)
    decider, tracker = Decider(policy), Tracker()
    step = 1.0 / DOOR_FPS
    next_time, first = start, None
    for t, face in frames:
        if t < next_time:
            continue
        next_time = t + step
        first = t if first is None else first
        candidate = candidate_from_track([face], tracker, rank, t, min_face_px=policy.min_face_px)
        if decider.observe(candidate, t).opens:
            return candidate.user_id, t - first
    return None, None


def gallery(enrolled: dict):
    names = list(enrolled)
    return Ranker([n for n in names for _ in range(len(enrolled[n]))], np.concatenate([enrolled[n] for n in names]))


@pytest.mark.parametrize("clip", ["lp_d0.mp4", "sad_aoc.mp4"])
def test_a_person_enrolled_from_the_clip_is_let_in_within_a_second(engine, clips, security, distractors, clip):
    enrol, frames, start = enrolment_and_visit(engine, clips / clip)
    enrolled = dict(distractors, resident=enrol)
    threshold = door_threshold(security, people=len(enrolled))
    who, after = visit(frames, gallery(enrolled), threshold, start)
    assert who == "resident"
    assert after <= 1.0, f"granted {after:.2f} s after the face appeared"


def test_the_person_of_another_clip_is_not_let_in(engine, clips, security, distractors):
    enrol, _, _ = enrolment_and_visit(engine, clips / "lp_d0.mp4")
    _, visitor, start = enrolment_and_visit(engine, clips / "lp_d3.mp4")
    enrolled = dict(distractors, resident=enrol)
    threshold = door_threshold(security, people=len(enrolled))
    who, _ = visit(visitor, gallery(enrolled), threshold, start)
    assert who is None
