"""Track aggregation on real faces: one track per person in view, its best frames averaged, never two people mixed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.recognition.match import Ranker
from edge.recognition.track import (TrackOptions, Tracker, box_iou, face_weight, frame_weight, match_track)

PEOPLE = ("Paul_Wolfowitz", "Ricardo_Lagos", "Jennifer_Lopez", "Hans_Blix", "John_Bolton", "Zhu_Rongji")


@pytest.fixture(scope="module")
def lfw(engine, faces_dir):
    """name -> list of Face (the door's face of each photograph) for a few LFW people with 7-8 photographs."""
    from edge.recognition import load_image

    out = {}
    for name in PEOPLE:
        faces = []
        for path in sorted((faces_dir / "lfw_view1" / name).glob("*.jpg")):
            found = engine.faces(load_image(path), limit=1)
            if found:
                faces.append(found[0])
        out[name] = faces
    return out


def _observe(tracker, face, t):
    return tracker.observe(face.box, face.embedding, t, weight=face_weight(face))


def test_frames_of_one_person_stay_one_track_and_average(lfw):
    tracker = Tracker()
    faces = lfw["Paul_Wolfowitz"][3:7]
    tracks = [_observe(tracker, f, i * 0.1) for i, f in enumerate(faces)]
    assert len({t.id for t in tracks}) == 1
    track = tracks[-1]
    assert len(track) == 4
    expected = np.sum([f.embedding * face_weight(f) for f in faces], axis=0)
    assert np.allclose(track.embedding(), expected / np.linalg.norm(expected), atol=1e-5)


def test_someone_else_in_the_same_place_starts_a_new_track(lfw):
    tracker = Tracker()
    first = [_observe(tracker, f, i * 0.1) for i, f in enumerate(lfw["Paul_Wolfowitz"][:3])]
    intruder = lfw["Jennifer_Lopez"][0]
    other = tracker.observe(first[-1].last.box, intruder.embedding, 0.3, weight=face_weight(intruder))
    assert other.id != first[-1].id
    assert len(other) == 1                     # none of the resident's frames were carried over
    assert [t.id for t in tracker.tracks] == [other.id]   # and the resident's track is over


def test_a_face_elsewhere_keeps_its_own_track(lfw):
    tracker = Tracker()
    a = _observe(tracker, lfw["Hans_Blix"][0], 0.0)
    b_face = lfw["John_Bolton"][0]
    b = tracker.observe((600, 400, 120, 120), b_face.embedding, 0.05, weight=1.0)
    a2 = _observe(tracker, lfw["Hans_Blix"][1], 0.1)
    assert b.id != a.id and a2.id == a.id and len(a2) == 2


def test_a_track_ends_after_the_gap(lfw):
    tracker = Tracker(TrackOptions(gap_seconds=0.5))
    f0, f1 = lfw["Ricardo_Lagos"][:2]
    first = _observe(tracker, f0, 0.0)
    assert _observe(tracker, f1, 0.4).id == first.id
    assert _observe(tracker, f0, 1.0).id != first.id


def test_the_track_uses_its_best_frames(lfw):
    tracker = Tracker(TrackOptions(keep_frames=6, best_frames=2))
    faces = lfw["Zhu_Rongji"][:3]
    for i, (f, w) in enumerate(zip(faces, (1.0, 0.1, 0.9))):
        track = tracker.observe(faces[0].box, f.embedding, i * 0.1, weight=w)
    expected = faces[0].embedding * 1.0 + faces[2].embedding * 0.9
    assert np.allclose(track.embedding(), expected / np.linalg.norm(expected), atol=1e-5)


def test_two_photographs_together_match_their_person_better_than_each_alone(lfw):
    """The reason for tracks: the mean of two looks is closer to the person's template than the looks are."""
    names = list(lfw)
    templates = {n: np.stack([f.embedding for f in lfw[n][:3]]) for n in names}
    rank = Ranker([n for n in names for _ in range(3)], np.concatenate([templates[n] for n in names]))
    gains = []
    for name in names:
        probes = lfw[name][3:5]
        tracker = Tracker()
        for i, f in enumerate(probes):
            track = tracker.observe(probes[0].box, f.embedding, i * 0.1, weight=1.0, label=rank(f.embedding)[0][0])
        assert len(track) == 2, f"{name}: two photographs of one person split into two tracks"
        m = match_track(track, rank)
        assert m.user_id == name and m.agreeing == 2 and m.frames == 2
        alone = [dict(rank(f.embedding))[name] for f in probes]
        gains.append(m.score - np.mean(alone))
    assert min(gains) > 0 and np.mean(gains) > 0.03, gains


def test_match_track_reports_runner_up_and_margin(lfw):
    names = ["Hans_Blix", "John_Bolton"]
    rank = Ranker([n for n in names for _ in range(3)],
                  np.concatenate([np.stack([f.embedding for f in lfw[n][:3]]) for n in names]))
    tracker = Tracker()
    track = _observe(tracker, lfw["Hans_Blix"][4], 0.0)
    m = match_track(track, rank)
    scores = dict(rank(lfw["Hans_Blix"][4].embedding))
    assert m.user_id == "Hans_Blix" and m.score == pytest.approx(scores["Hans_Blix"], abs=1e-5)
    assert m.margin == pytest.approx(scores["Hans_Blix"] - scores["John_Bolton"], abs=1e-5)
    assert match_track(track, Ranker([], np.zeros((0, 128), np.float32))).user_id is None


def test_blurred_dark_small_frames_weigh_less(engine, faces_dir):
    from edge.recognition import load_image

    img = load_image(faces_dir / "lfw_view1" / "Hans_Blix" / "Hans_Blix_0002.jpg")
    sharp = engine.faces(img, limit=1)[0]
    blurred = engine.faces(cv2.GaussianBlur(img, (0, 0), 2.5), limit=1)[0]
    assert face_weight(sharp) > 0.7
    assert face_weight(blurred) < 0.6 * face_weight(sharp)
    assert frame_weight(score=0.9, size=40, sharpness=900, brightness=120) < frame_weight(
        score=0.9, size=120, sharpness=900, brightness=120)
    assert frame_weight(score=0.9, size=120, sharpness=900, brightness=30) < frame_weight(
        score=0.9, size=120, sharpness=900, brightness=120)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_options_are_checked():
    with pytest.raises(ValueError):
        TrackOptions(best_frames=0)
    with pytest.raises(ValueError):
        TrackOptions(keep_frames=3, best_frames=4)


# --- choosing diverse enrolment frames (edge.recognition.diversity) ---------------------------------------------

def test_near_duplicate_frames_are_dropped_and_diverse_ones_chosen(lfw):
    from edge.recognition.diversity import drop_near_duplicates, farthest_points

    faces = lfw["Jennifer_Lopez"][:5]
    base = np.stack([f.embedding for f in faces])
    # Each photograph seen three times, nearly unchanged (a camera's consecutive frames).
    rng = np.random.default_rng(3)
    noisy = base[:, None, :] + 0.01 * rng.normal(size=(5, 3, 128))
    frames = (noisy / np.linalg.norm(noisy, axis=-1, keepdims=True)).reshape(15, 128).astype(np.float32)
    weights = np.tile([0.9, 0.8, 0.7], 5) * np.repeat([1.0, 0.9, 0.8, 0.7, 0.6], 3)
    kept = drop_near_duplicates(frames, weights)
    assert sorted(i // 3 for i in kept) == [0, 1, 2, 3, 4]          # one frame per look
    chosen = farthest_points(frames, weights, 3)
    assert chosen[0] == 0                                           # the best frame first
    assert len({i // 3 for i in chosen}) == 3                       # three different looks
    # farthest-point: the chosen set is at least as spread as the three best looks
    spread = lambda idx: max(float(frames[a] @ frames[b]) for a in idx for b in idx if a != b)
    assert spread(chosen) <= spread([0, 3, 6]) + 1e-6


def test_a_template_like_another_enrolled_person_is_reported(lfw):
    from edge.recognition.diversity import lookalikes

    names = ["Hans_Blix", "John_Bolton"]
    rank = Ranker([n for n in names for _ in range(3)],
                  np.concatenate([np.stack([f.embedding for f in lfw[n][:3]]) for n in names]))
    new = lfw["Hans_Blix"][5].embedding
    assert lookalikes(new, rank, own_user="newcomer", threshold=0.6)[0][0] == "Hans_Blix"
    assert lookalikes(new, rank, own_user="Hans_Blix", threshold=0.6) == []


def test_liveness_starts_a_new_track_when_the_recognition_track_changes():
    """Someone else stepping into the same place is a new face for liveness too, not only for recognition."""
    from edge.liveness.stage import LivenessStage

    stage = LivenessStage(mode="passive", window_seconds=2.0, models=None)
    stage._judge, stage._last_seen, stage._last_box, stage._last_face_track = object(), 0.0, (0, 0, 100, 100), 1
    assert stage._same_track((2, 0, 100, 100), 0.1, 1)
    assert not stage._same_track((2, 0, 100, 100), 0.1, 2)
    assert stage._same_track((2, 0, 100, 100), 0.1, None)        # callers without recognition tracks: boxes only
