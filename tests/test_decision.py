"""The door policy as plain numbers: votes, margin, window, cooldown, lockout."""

from __future__ import annotations

import numpy as np
import pytest

from edge import config
from edge.decision import Candidate, Decider, Policy, candidate_from_faces

FPS = 15.0


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


ALICE_FACE = unit(1)
STRANGER_FACE = unit(2)
OTHER_STRANGER = unit(3)


def policy(**changes) -> Policy:
    values = dict(threshold=0.7, frames_required=3, frames_considered=5, window_seconds=2.0, margin=0.05,
                  cooldown_seconds=5.0, lockout_after=3, lockout_seconds=60.0)
    values.update(changes)
    return Policy(**values)


def cand(user="alice", score=0.8, runner_up=0.3, face=ALICE_FACE, ok=True) -> Candidate:
    return Candidate(user_id=user, score=score, runner_up=runner_up, embedding=face, box=(0, 0, 120, 120),
                     quality_ok=ok)


def run(decider, candidates, start=0.0, fps=FPS):
    return [decider.observe(c, start + i / fps) for i, c in enumerate(candidates)]


def test_three_matching_frames_open_the_third_and_not_before():
    kinds = [d.kind for d in run(Decider(policy()), [cand()] * 3)]
    assert kinds == ["collecting", "collecting", "grant"]


def test_one_lucky_frame_among_strangers_never_opens():
    d = Decider(policy())
    frames = [cand(score=0.4), cand(score=0.9), cand(score=0.4), cand(score=0.5)] * 10
    assert not any(x.opens for x in run(d, frames))


def test_votes_must_fall_inside_the_window():
    d = Decider(policy(window_seconds=2.0))
    # one matching frame every 1.5 s with nothing in between: never 3 inside 2 s
    decisions = [d.observe(cand(), t) for t in (0.0, 1.5, 3.0, 4.5, 6.0)]
    assert not any(x.opens for x in decisions)


def test_votes_must_be_among_the_last_n_frames():
    d = Decider(policy(frames_required=3, frames_considered=5))
    frames = [cand(), cand(score=0.2), cand(score=0.2), cand(score=0.2), cand(), cand(score=0.2), cand()]
    # at the 7th frame the last five hold only two matches
    assert not any(x.opens for x in run(d, frames, fps=30))


def test_margin_to_the_second_best_user_is_required():
    d = Decider(policy(margin=0.05))
    assert not any(x.opens for x in run(d, [cand(score=0.80, runner_up=0.78)] * 10))
    assert run(Decider(policy(margin=0.05)), [cand(score=0.80, runner_up=0.70)] * 3)[-1].opens


def test_poor_quality_frames_do_not_vote():
    assert not any(x.opens for x in run(Decider(policy()), [cand(ok=False)] * 10))


def test_split_votes_between_two_users_do_not_open():
    frames = [cand(user="alice"), cand(user="bob"), cand(user="alice"), cand(user="bob")]
    assert not any(x.opens for x in run(Decider(policy(frames_required=3, frames_considered=4)), frames))


def test_grant_names_the_user_and_starts_a_cooldown():
    d = Decider(policy(cooldown_seconds=5.0))
    grant = run(d, [cand()] * 3)[-1]
    assert (grant.kind, grant.user_id, grant.votes) == ("grant", "alice", 3)
    later = run(d, [cand()] * 20, start=1.0)
    assert {x.kind for x in later} == {"cooldown"}
    assert d.observe(cand(), 6.0).kind == "collecting"  # cooldown over: a new attempt begins


def test_a_stranger_in_view_is_reported_unknown_once_per_window():
    d = Decider(policy(window_seconds=2.0, lockout_after=100))
    decisions = run(d, [cand(user="alice", score=0.3, face=STRANGER_FACE)] * int(FPS * 4.5))
    refusals = [x for x in decisions if x.kind in ("unknown", "deny")]
    assert [x.kind for x in refusals] == ["unknown", "unknown"]
    assert "below the threshold" in refusals[0].reason


def test_recognised_but_inconsistent_is_a_deny_not_unknown():
    frames = [cand(score=0.75, runner_up=0.74)] * int(FPS * 2.1)  # above threshold, no margin
    kinds = [x.kind for x in run(Decider(policy()), frames)]
    assert "deny" in kinds and "grant" not in kinds


def test_repeated_refusals_lock_that_face_out_but_not_others():
    d = Decider(policy(window_seconds=1.0, lockout_after=3, lockout_seconds=60.0))
    stranger = [cand(score=0.3, face=STRANGER_FACE)] * int(FPS * 4.0)
    kinds = [x.kind for x in run(d, stranger)]
    assert kinds.count("unknown") == 2 and kinds.count("lockout") == 1
    after = kinds[kinds.index("lockout") + 1:]
    assert set(after) == {"locked_out"}
    # the same face coming back later (a new track) is still locked out ...
    assert d.observe(cand(score=0.3, face=STRANGER_FACE), 20.0).kind == "locked_out"
    # ... even if it now matched someone, while a different face is judged normally
    assert d.observe(cand(score=0.95, face=STRANGER_FACE), 20.1).kind == "locked_out"
    assert d.observe(cand(face=ALICE_FACE), 30.0).kind == "collecting"
    # and the lockout ends
    assert d.observe(cand(score=0.3, face=STRANGER_FACE), 64.0).kind == "collecting"


def test_grant_votes_refused_later_lock_the_face_out_after_lockout_after():
    """Liveness refusing a photograph's grant votes: the attacker cannot retry forever."""
    d = Decider(policy(lockout_after=3, lockout_seconds=60.0, cooldown_seconds=0.0))
    t = 0.0
    locked = []
    for _ in range(3):
        kinds = [x.kind for x in run(d, [cand()] * 3, start=t)]
        assert kinds[-1] == "grant"                       # recognition alone would open
        locked.append(d.refused_after_vote(ALICE_FACE, t + 0.2))
        t += 3.0
    assert locked == [False, False, True]
    assert d.observe(cand(), t).kind == "locked_out"
    d.observe(None, t + 2.5)                                                    # the face leaves
    assert d.observe(cand(face=STRANGER_FACE, score=0.3), t + 3.0).kind == "collecting"  # other faces are judged
    assert d.observe(cand(), t + 61.0).kind != "locked_out"


def test_no_face_for_longer_than_the_window_starts_a_new_attempt():
    d = Decider(policy())
    run(d, [cand()] * 2)
    assert d.observe(None, 1.0).kind == "idle"
    assert d.observe(None, 3.0).kind == "idle"
    assert d.observe(cand(), 3.1).kind == "collecting"  # the two old votes are gone


def test_policy_from_settings_prefers_store_values_and_model_threshold():
    cfg = config.Config().replace("decision", threshold=None)  # none = the model manifest's threshold
    p = Policy.from_settings(cfg.decision, {"frames_required": 2, "margin": 0.2}, model_threshold=0.66)
    assert (p.frames_required, p.margin, p.threshold) == (2, 0.2, 0.66)
    p = Policy.from_settings(cfg.decision, {"threshold": 0.8}, model_threshold=0.66)
    assert p.threshold == 0.8
    # The default threshold is "none": the caller's (door_policy: the security level's) threshold.
    assert config.DecisionConfig().threshold is None
    assert Policy.from_settings(config.Config().decision, {}, model_threshold=0.66).threshold == 0.66


def test_changed_policy_applies_to_the_next_frame():
    d = Decider(policy(frames_required=3))
    run(d, [cand()] * 2)
    d.update_policy(policy(frames_required=1, frames_considered=1))
    assert d.observe(cand(), 1.0).opens


def test_candidate_is_the_largest_face_above_the_minimum_size():
    class F:
        def __init__(self, box, emb):
            self.box, self.embedding, self.quality = box, emb, None

    faces = [F((0, 0, 60, 60), STRANGER_FACE), F((0, 0, 100, 90), ALICE_FACE), F((0, 0, 85, 85), OTHER_STRANGER)]
    ranked = lambda e: [("alice", float(e @ ALICE_FACE)), ("bob", float(e @ STRANGER_FACE))]
    c = candidate_from_faces(faces, ranked, min_face_px=80)
    assert c.user_id == "alice" and c.score == pytest.approx(1.0) and c.box == (0, 0, 100, 90)
    assert candidate_from_faces(faces[:1], ranked, min_face_px=80) is None
    empty = candidate_from_faces(faces, lambda e: [], min_face_px=80)
    assert empty.user_id is None and empty.score == -1.0


def test_ranker_mean_template_versus_best_template():
    a1, a2 = unit(10), unit(11)
    b1 = unit(12)
    probe = a1  # identical to one of alice's templates, unrelated to the other
    from edge.recognition.match import Ranker

    ranked_best = Ranker(
        ["alice", "alice", "bob"], np.stack([a1, a2, b1]), aggregation="best")(probe)
    assert ranked_best[0] == ("alice", pytest.approx(1.0, abs=1e-5))
    mean = Ranker(["alice", "alice", "bob"], np.stack([a1, a2, b1]), aggregation="mean")
    expected = float(probe @ ((a1 + a2) / np.linalg.norm(a1 + a2)))
    users = dict(mean(probe))
    assert users["alice"] == pytest.approx(expected, abs=1e-5) and users["alice"] < 0.8
    assert [u for u, _ in mean(probe)] == ["alice", "bob"]
    assert Ranker([], np.zeros((0, 128), np.float32))(probe) == []
    with pytest.raises(ValueError):
        Ranker(["a"], np.stack([a1]), aggregation="median")


def test_policy_defaults_are_the_configuration_defaults():
    """One table: Policy's defaults used to disagree with the configuration (margin 0.05 against 0.10)."""
    from dataclasses import fields

    defaults = config.DecisionConfig()
    shared = [f.name for f in fields(Policy) if hasattr(defaults, f.name) and f.name != "threshold"]
    assert "margin" in shared and len(shared) == 8
    assert {n: getattr(Policy(threshold=0.8), n) for n in shared} == {n: getattr(defaults, n) for n in shared}


def test_policy_refuses_conflicting_settings_instead_of_clamping():
    from edge.errors import SettingError

    with pytest.raises(SettingError) as err:
        Policy.from_settings(config.DecisionConfig(), {"frames_required": 6}, model_threshold=0.7)
    assert err.value.field == "frames_required"


# --- tracks and the security level ------------------------------------------------------------------------------

def tracked(track_id, user="alice", score=0.8, face=ALICE_FACE) -> Candidate:
    return Candidate(user_id=user, score=score, runner_up=0.3, embedding=face, box=(0, 0, 120, 120),
                     track_id=track_id)


def test_votes_of_another_track_never_count_together():
    d = Decider(policy())
    # Two frames of one face, then someone else who also scores as alice for two frames: 4 votes, 2 per track.
    out = run(d, [tracked(1), tracked(1), tracked(2, face=STRANGER_FACE), tracked(2, face=STRANGER_FACE)])
    assert [o.kind for o in out] == ["collecting"] * 4
    assert d.observe(tracked(2, face=STRANGER_FACE), 4 / FPS).opens        # the second face's own third vote


def test_a_stream_of_brief_faces_is_still_refused_once_its_window_is_over():
    d = Decider(policy(window_seconds=1.0))
    kinds = [d.observe(tracked(i // 5, user="bob", score=0.5), i / 10).kind for i in range(16)]
    assert "unknown" in kinds and "grant" not in kinds


def test_door_policy_threshold_follows_the_security_level_and_the_people_enrolled(models_dir):
    import json

    from edge.decision import door_policy
    from edge.recognition.security import Security, door_threshold

    manifest = json.loads((models_dir / "manifest.json").read_text())
    security = Security.from_manifest(next(m for m in manifest["models"] if m["id"] == "facenet-int8"))
    cfg = config.Config().decision
    family, why = door_policy(cfg, {}, security=security, model_threshold=0.69, people=4)
    assert family.threshold == door_threshold(security, people=4) and "4 people" in why
    office, _ = door_policy(cfg, {}, security=security, model_threshold=0.69, people=300)
    assert office.threshold > family.threshold
    stricter, _ = door_policy(cfg, {"security_level": 10_000_000}, security=security, model_threshold=0.69, people=4)
    assert stricter.threshold > family.threshold
    fixed, why = door_policy(cfg, {"threshold": 0.81}, security=security, model_threshold=0.69, people=4)
    assert fixed.threshold == 0.81 and "administrator" in why
    legacy, why = door_policy(cfg, {}, security=None, model_threshold=0.69, people=4)
    assert legacy.threshold == 0.80          # models without a calibration: the earlier default, not 0.69


def test_candidate_from_track_scores_the_track(engine, faces_dir):
    from edge.decision import candidate_from_track
    from edge.recognition import load_image
    from edge.recognition.match import Ranker
    from edge.recognition.track import Tracker

    import cv2

    photos = sorted((faces_dir / "deepface_unit" / "id01").glob("*.jpg"))
    faces = [engine.faces(load_image(p), limit=1) for p in photos[:4]]
    rank = Ranker(["alice"] * 3, np.stack([f[0].embedding for f in faces[:3]]))
    next_frame = engine.faces(cv2.convertScaleAbs(load_image(photos[3]), alpha=0.8, beta=10), limit=1)
    tracker = Tracker()
    first = candidate_from_track(faces[3], tracker, rank, 0.0, min_face_px=80)
    second = candidate_from_track(next_frame, tracker, rank, 0.1, min_face_px=80)
    assert first.track_id == second.track_id and second.frames == 2 and second.user_id == "alice"
    assert np.allclose(second.embedding, tracker.tracks[0].embedding())
    assert candidate_from_track([], tracker, rank, 0.2, min_face_px=80) is None
