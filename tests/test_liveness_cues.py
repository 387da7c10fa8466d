"""Each liveness cue as a pure function over numpy arrays, on inputs whose right answer is known by construction
(drawn frames, exact geometry, hand-made eyelid series). Real frames through the real models:
tests/test_liveness_data.py."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from edge.liveness import blink, challenge, gaze, motion, mouth, screen, synth
from edge.liveness.eyes import INPUT_SIZE as EYE_SIZE, eye_transform, iris_offset, lid_opening
from edge.liveness.mesh import INPUT_SIZE as MESH_SIZE, roi_transform


# --- blink -------------------------------------------------------------------------------------------------------

def feed(detector, series, fps=15.0):
    return [s for i, v in enumerate(series) if (s := detector.update(v, i / fps)) is not None]


def test_a_dip_and_recovery_is_one_blink_with_its_start_time():
    open_ = [0.30] * 20
    series = open_ + [0.20, 0.05, 0.04, 0.12, 0.26] + open_
    assert feed(blink.BlinkDetector(), series) == [pytest.approx(21 / 15.0)]


def test_jitter_of_a_still_face_or_a_bent_print_is_not_a_blink():
    rng = np.random.default_rng(0)
    still = 0.30 * (1 + rng.normal(0, 0.05, 300))     # 5 % jitter, 20 s
    bent = 0.30 * np.r_[np.ones(30), np.full(10, 0.66), np.ones(30)]  # the deepest dip a print made on NUAA
    det = blink.BlinkDetector()
    assert feed(det, still) == [] and det.lowest > 0.7
    assert feed(blink.BlinkDetector(), bent) == []


def test_eyes_closed_for_long_or_never_reopened_is_not_a_blink():
    assert feed(blink.BlinkDetector(), [0.3] * 20 + [0.03] * 30 + [0.3] * 10) == []  # 2 s closed
    assert feed(blink.BlinkDetector(), [0.3] * 20 + [0.03] * 5) == []


def test_no_blink_before_the_open_level_is_known():
    assert feed(blink.BlinkDetector(), [0.03, 0.3, 0.3]) == []


def test_a_wink_is_a_blink_but_one_eye_jittering_is_not():
    """Each eye against its own open level: one eye closing and reopening is a blink; the other eye's open level
    (lower, e.g. a face turned a little) does not hide it, and per-eye jitter is not one."""
    left = [0.30] * 20 + [0.30, 0.29, 0.31, 0.30, 0.30] + [0.30] * 20
    right = [0.20] * 20 + [0.12, 0.03, 0.02, 0.10, 0.19] + [0.20] * 20
    assert feed(blink.BlinkDetector(), list(zip(left, right))) == [pytest.approx(21 / 15.0)]
    rng = np.random.default_rng(1)
    jitter = list(zip(0.30 * (1 + rng.normal(0, 0.06, 300)), 0.20 * (1 + rng.normal(0, 0.06, 300))))
    assert feed(blink.BlinkDetector(), jitter) == []


def travel_of(series, fps=15.0):
    travel = blink.EyelidTravel()
    for i, value in enumerate(series):
        travel.update(value, i / fps)
    return travel.ratio


def test_eyelid_travel_counts_blinks_winks_and_eyes_that_open_but_not_slow_drift():
    open_, shut = (0.30, 0.28), (0.03, 0.04)
    assert travel_of([open_] * 10 + [shut] + [open_] * 5) < 0.2                  # a one-frame blink
    assert travel_of([open_] * 10 + [(0.30, 0.03)] * 2 + [open_] * 5) < 0.2      # a wink
    assert travel_of([shut] * 40 + [open_] * 5) < 0.2                            # eyes shut, then opened
    assert travel_of([open_] * 20 + [shut] * 40) < 0.2                           # ... or open, then shut
    # a turning print: one eye's apparent opening drifts to half its level over a second, and one bad frame
    drift = [(0.30, 0.30 * (1 - 0.5 * min(i, 15) / 15)) for i in range(30)]
    assert travel_of(drift) > 0.6
    assert travel_of([open_] * 10 + [(0.6, 0.56)] + [open_] * 10) > 0.9         # a spike does not raise the level
    assert travel_of([shut, open_, open_]) == 1.0                                # too few frames: no verdict


def test_gaze_motion_is_the_range_of_steady_iris_offsets():
    still = gaze.GazeMotion()
    for x in [0.01, -0.01, 0.0, 0.3, 0.0, 0.01, -0.01]:   # one frame of iris-model error
        still.update((x, 0.0))
    assert still.range < 0.03
    looking = gaze.GazeMotion()
    for x in [0.0, 0.0, 0.0, 0.1, 0.15, 0.15, 0.15]:       # a saccade to the side, held
        looking.update((x, 0.02))
    assert looking.range == pytest.approx(0.15)
    assert gaze.GazeMotion().range == 0.0


def test_normalised_opening_ignores_vertical_foreshortening():
    """A print tilted back squashes the face vertically: lid gap and nose length shrink together."""
    points = np.zeros((468, 2), np.float32)
    points[[33, 133, 362, 263]] = [[0, 0], [30, 0], [60, 0], [90, 0]]
    points[168], points[2] = [45, 0], [45, 40]
    upright = blink.normalised_opening(0.3, 0.3, points)
    squashed = points * np.float32([1.0, 0.7])
    # the lid gap ratio (gap over eye width) shrinks by the same 0.7 on a squashed face
    assert blink.normalised_opening(0.21, 0.21, squashed) == pytest.approx(upright, rel=1e-5)
    assert blink.dip_ratio([0.3, 0.3, 0.1, 0.3]) == pytest.approx(1 / 3)


def test_mouth_motion_needs_lips_that_part_not_one_bad_frame():
    points = np.zeros((468, 2), np.float32)
    points[168], points[2] = [0, 0], [0, 40]

    def opening(gap):
        p = points.copy()
        p[13], p[14] = [0, 50], [0, 50 + gap]
        return mouth.mouth_opening(p)

    assert opening(8) == pytest.approx(0.2)
    still = mouth.MouthMotion()
    for gap in [1, 1, 1, 12, 1, 1, 1]:                 # one frame of mesh error
        still.update(opening(gap))
    assert still.range < 0.05
    talking = mouth.MouthMotion()
    for gap in [1, 1, 4, 9, 12, 12, 8, 3, 1, 1]:
        talking.update(opening(gap))
    assert talking.range >= mouth.MOTION


# --- eyes / mesh geometry -----------------------------------------------------------------------------------------

def test_eye_crop_is_level_and_the_other_eye_is_mirrored():
    a, b = np.array([100.0, 50.0]), np.array([130.0, 60.0])
    for mirror in (False, True):
        m = eye_transform(a, b, mirror=mirror)
        pa, pb = m[:, :2] @ a + m[:, 2], m[:, :2] @ b + m[:, 2]
        assert pa[1] == pytest.approx(pb[1], abs=1e-6)                       # level
        assert ((pa[0] < pb[0]) != mirror)                                   # mirrored: corners swap sides
        assert abs(pa[0] - pb[0]) == pytest.approx(EYE_SIZE / 2.3, rel=1e-6)  # eye width is 1/2.3 of the crop
        assert (pa + pb) / 2 == pytest.approx([EYE_SIZE / 2, EYE_SIZE / 2])


def test_lid_opening_of_a_drawn_eye():
    contour = np.zeros((71, 2))
    contour[:9, 0] = np.linspace(0, 40, 9)           # lower lid, corner to corner, y = 0
    contour[9:16, 0] = np.linspace(5, 35, 7)
    contour[9:16, 1] = -12.0                          # upper lid 12 px above
    assert lid_opening(contour) == pytest.approx(12 / 40)
    assert iris_offset(contour, [20.0, -6.0]) == pytest.approx([0.0, -6 / 40])   # looking straight ahead
    assert iris_offset(contour, [30.0, -6.0])[0] == pytest.approx(0.25)          # looking to the side


def test_mesh_crop_centres_the_face_box_and_levels_the_eyes():
    box, eyes = (100, 80, 60, 80), np.array([[115, 100], [145, 110], [0, 0], [0, 0], [0, 0]], float)
    m = roi_transform(box, eyes)
    centre = m[:, :2] @ np.array([130.0, 120.0]) + m[:, 2]
    assert centre == pytest.approx([MESH_SIZE / 2, MESH_SIZE / 2])
    e0, e1 = (m[:, :2] @ e + m[:, 2] for e in eyes[:2])
    assert e0[1] == pytest.approx(e1[1], abs=1e-6)


# --- depth from motion ---------------------------------------------------------------------------------------------

def face_points(nose_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Mesh-indexed points of a face before/after a 20 degree yaw; the nose ``nose_out`` eye distances in front."""
    rng = np.random.default_rng(1)
    xyz = np.zeros((468, 3))
    xyz[:, :2] = rng.uniform(-1, 1, (468, 2))
    xyz[list(motion.NOSE_POINTS), 2] = -nose_out
    yaw = np.radians(20)
    rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])

    def view(p):
        p = p + np.array([0, 0, 8.0])
        return (p[:, :2] / p[:, 2:] * 800 + 320).astype(np.float32)

    return view(xyz), view(xyz @ rot.T)


def test_nose_parallax_separates_a_head_from_a_flat_copy():
    eye_distance = 100.0  # 1 unit at depth 8 is 100 px
    flat_before, flat_after = face_points(0.0)
    head_before, head_after = face_points(0.4)  # about 2.5 cm in front at 6.3 cm eye distance
    ok = np.ones(468, bool)
    assert motion.nose_residual(flat_before, flat_after, ok, eye_distance) < 0.01
    assert motion.nose_residual(head_before, head_after, ok, eye_distance) > 0.1
    assert motion.turn_amount(head_before, head_after, eye_distance) > motion.MIN_TURN


def test_too_few_tracked_points_abstain():
    before, after = face_points(0.4)
    ok = np.zeros(468, bool)
    assert motion.nose_residual(before, after, ok, 100.0) is None


def test_lucas_kanade_follows_texture_and_drops_what_it_cannot_track():
    rng = np.random.default_rng(2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (240, 320), dtype=np.uint8), (0, 0), 1.5)
    frame = np.full((240, 320), 128, np.uint8)
    frame[:, :160] = texture[:, :160]                 # left half textured, right half flat grey
    moved = np.roll(frame, (2, 3), axis=(0, 1))
    points = np.array([[60, 100], [100, 120], [250, 100], [280, 150]], np.float32)
    new, ok = motion.track(frame, moved, points)
    assert ok[:2].all() and new[:2] == pytest.approx(points[:2] + [3, 2], abs=0.3)
    assert not ok[2:].any()


# --- deny cues -----------------------------------------------------------------------------------------------------

def scene(rng) -> np.ndarray:
    img = np.full((480, 640, 3), 120, np.uint8)
    img += rng.integers(0, 12, img.shape, dtype=np.uint8)
    return cv2.GaussianBlur(img, (5, 5), 0)


BOX = (270, 170, 100, 130)


def test_outline_score_sees_a_frame_around_the_face_only():
    rng = np.random.default_rng(3)
    plain = scene(rng)
    framed = plain.copy()
    cv2.rectangle(framed, (210, 110), (430, 370), (20, 20, 20), 6)    # a phone bezel
    beside = plain.copy()
    cv2.line(beside, (150, 20), (150, 460), (20, 20, 20), 6)           # a door frame beside the person
    assert screen.outline_score(framed, BOX) == 1.0
    assert screen.outline_score(plain, BOX) == 0.0
    assert screen.outline_score(beside, BOX) <= 0.25


def test_glare_score_measures_a_large_white_blob_on_the_face():
    rng = np.random.default_rng(4)
    img = scene(rng)
    assert screen.glare_score(img, BOX) == 0.0
    cv2.circle(img, (320, 235), 30, (255, 255, 255), -1)
    assert screen.glare_score(img, BOX) == pytest.approx(np.pi * 30 ** 2 / (100 * 130), rel=0.1)


def test_deny_cues_handle_a_box_outside_the_frame():
    img = scene(np.random.default_rng(6))
    for fn in (screen.outline_score, screen.glare_score):
        assert fn(img, (700, 500, 50, 50)) == 0.0


# --- challenge -----------------------------------------------------------------------------------------------------

def armed(seed=1, **options):
    ch = challenge.Challenge(rng=random.Random(seed), **options)
    ch.start(0.0)
    return ch


def test_blinks_in_the_window_after_each_request_pass():
    ch = armed()
    assert not ch.asking(ch.ask_at - 0.01) and ch.asking(ch.ask_at + 0.1)
    first = ch.ask_at
    ch.observe_blink(first + 0.4)
    assert ch.passed == 1 and not ch.done and ch.ask_at - (first + 0.4) >= challenge.QUIET  # round two
    ch.observe_blink(ch.ask_at + 0.5)
    assert ch.done and ch.requests == 2 and not ch.asking(ch.ask_at + 0.5)


def test_blinks_too_fast_too_late_or_before_the_request_do_not_pass():
    ch = armed(rounds=1)
    first = ch.ask_at
    ch.observe_blink(first + 0.05)                 # faster than anyone reacts: a replay that got lucky
    assert not ch.done and ch.failed == 1 and ch.ask_at > first
    ch = armed(rounds=1)
    ch.update(ch.ask_at + 1.1)                     # nobody blinked
    assert ch.failed == 1 and not ch.done
    ch = armed(rounds=1)
    before = ch.ask_at
    ch.observe_blink(before - 0.5)                 # blinked just before the request: asked later, not failed
    assert ch.failed == 0 and ch.ask_at > before and ch.requests == 1
    ch.observe_blink(ch.ask_at + 0.3)              # ... the later request is answered
    assert ch.done


def test_a_track_gets_a_limited_number_of_requests():
    ch = armed(rounds=1, max_requests=3)
    for _ in range(5):
        if ch.ask_at is not None:
            ch.update(ch.ask_at + 1.1)
    assert ch.exhausted and ch.requests == 3 and ch.failed == 3 and not ch.asking(100.0)


def test_the_request_moment_is_random():
    moments = {round(armed(seed).ask_at, 3) for seed in range(20)}
    assert len(moments) == 20 and all(challenge.DELAY[0] <= m <= challenge.DELAY[1] for m in moments)


# --- synthetic attacks -----------------------------------------------------------------------------------------------

def test_synthetic_attacks_are_repeatable_and_framed_by_their_medium():
    rng = np.random.default_rng(7)
    photo = cv2.GaussianBlur(rng.integers(0, 255, (240, 180, 3), dtype=np.uint8), (0, 0), 3)
    first = [f for _, f in synth.attack("phone-photo", photo, seed=3, seconds=0.4)]
    again = [f for _, f in synth.attack("phone-photo", photo, seed=3, seconds=0.4)]
    assert len(first) == 6 and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert first[0].shape == (480, 640, 3) and first[0].dtype == np.uint8
    dark = (first[0].max(axis=2) < 40).mean()
    assert dark > 0.01  # the black bezel is in the picture
    with pytest.raises(ValueError, match="unknown attack family"):
        next(synth.attack("hologram", photo))
