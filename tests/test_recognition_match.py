"""Plain numpy parts: cosine similarity, the per-person gallery ranking, the alignment transform, preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from edge.recognition.align import align_face, similarity_transform, template
from edge.recognition.embed import l2_normalise, prewhiten
from edge.recognition.match import Ranker, best_per_user, centred, cosine, similarities


def test_cosine_is_scale_free_and_bounded():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    assert cosine(a, 10 * a) == pytest.approx(1.0)
    assert cosine(a, -a) == pytest.approx(-1.0)
    assert cosine(a, np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="different sizes"):
        cosine(a, np.ones(4))


def test_best_per_user_takes_each_persons_best_template():
    rng = np.random.default_rng(1)
    probe = l2_normalise(rng.normal(size=128))
    near = l2_normalise(probe + 0.3 * rng.normal(size=128))
    far = l2_normalise(rng.normal(size=(3, 128)))
    matrix = np.vstack([far[0], near, far[1], far[2]])
    ranked = best_per_user(probe, (["bob", "alice", "alice", "carol"], matrix))
    assert ranked[0][0] == "alice"
    assert ranked[0][1] == pytest.approx(float(near @ probe), abs=1e-5)
    assert len(ranked) == 3                               # one entry per person, not per template
    assert best_per_user(probe, ([], np.zeros((0, 128), np.float32))) == []


def test_best_per_user_accepts_a_gallery_object():
    class Gallery:
        user_ids = ["u1", "u2"]
        matrix = np.eye(2, 128, dtype=np.float32)
    assert best_per_user(np.eye(1, 128)[0], Gallery())[0] == ("u1", pytest.approx(1.0))
    with pytest.raises(ValueError):
        best_per_user(np.eye(1, 128)[0], (["u1"], np.eye(2, 128)))


def test_similarities_matches_cosine():
    rng = np.random.default_rng(2)
    m = l2_normalise(rng.normal(size=(5, 128)))
    p = rng.normal(size=128)
    assert np.allclose(similarities(p, m), [cosine(p, row) for row in m], atol=1e-5)


def test_similarity_transform_recovers_rotation_scale_and_shift():
    src = template(160)
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([30.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-6) and np.allclose(m[:, 2], shift, atol=1e-4)
    upright = similarity_transform(src, dst, rotate=False)
    assert abs(upright[0, 1]) < 1e-12 and abs(upright[1, 0]) < 1e-12


def test_align_face_puts_landmarks_on_the_template():
    """Draw five dots, align them: they land on the template positions, whatever the roll and size."""
    image = np.zeros((600, 800, 3), np.uint8)
    target = template(160, zoom=1.25)
    angle, scale = np.deg2rad(-15), 2.5
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (target - 80) @ rot.T + [400, 300]
    for x, y in points:
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    crop = align_face(image, points, zoom=1.25)
    for x, y in target:
        assert crop[int(round(y)), int(round(x))].max() > 100


def test_prewhiten_is_per_image_standardisation():
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, size=(2, 160, 160, 3), dtype=np.uint8)
    crops[1] = 7                                       # a flat image: std floors at 1/sqrt(N)
    out = prewhiten(crops)
    assert out.dtype == np.float32
    assert abs(float(out[0].mean())) < 1e-4 and float(out[0].std()) == pytest.approx(1.0, abs=1e-3)
    assert np.all(out[1] == 0)


def test_a_centred_ranker_discounts_what_every_face_shares():
    """Two strangers who share only the mean face score high as plain cosines and low once it is taken away;
    the same face still scores 1 with itself, and the order of genuine matches is kept."""
    rng = np.random.default_rng(3)
    mean_face = l2_normalise(rng.normal(size=128)) * 0.6
    a, b = (l2_normalise(mean_face + l2_normalise(rng.normal(size=128)) * 0.6) for _ in range(2))
    assert float(a @ b) > 0.4                                         # alike only through the mean face
    plain = Ranker(["bob"], b[None])
    centre_ranker = Ranker.for_gallery(type("G", (), {"user_ids": ["bob"], "matrix": b[None]})(), centre=mean_face)
    assert plain(a)[0][1] > 0.4 and abs(centre_ranker(a)[0][1]) < 0.25
    assert centre_ranker(b)[0][1] == pytest.approx(1.0, abs=1e-5)
    both = np.stack([a, b])
    np.testing.assert_allclose(np.linalg.norm(centred(both, mean_face), axis=1), 1.0, atol=1e-5)
    assert centred(both, None) is not None and np.array_equal(centred(both, None), both)
