"""The security level: from a false-accept rate per stranger attempt and the people enrolled to a threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.recognition.security import (DEFAULT_FAR_PER_ATTEMPT, Security, calibrate, comparisons_per_attempt,
                                       door_level, door_looks, door_threshold)


@pytest.fixture(scope="module")
def security(models_dir) -> Security:
    """The calibration the models build stored in the manifest for the shipped model."""
    manifest = json.loads((models_dir / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["id"] == manifest["default_model"])
    return Security.from_manifest(entry)


def test_the_manifest_holds_a_calibration_consistent_with_its_threshold(models_dir, security):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["id"] == manifest["default_model"])
    rates = sorted(security.far, reverse=True)
    assert rates[0] == 1e-3 and min(rates) <= 1e-7
    thresholds = [security.far[r] for r in rates]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    # One photograph against a mean template at 1e-5 is near the per-pair threshold the manifest measured.
    assert abs(security.far[1e-5] - entry["threshold"]) < 0.06
    assert entry["security"]["different_person_comparisons"] > 1_000_000
    # scores are taken in the centred space the door ranks in: the mean DevTrain embedding, a common component
    assert security.centre is not None and security.centre.shape == (128,)
    assert 0.05 < float(np.linalg.norm(security.centre)) < 0.5


def test_more_people_enrolled_need_a_higher_threshold(security):
    family = door_threshold(security, people=4)
    office = door_threshold(security, people=311)
    assert family < office
    assert door_threshold(security, people=1) <= family
    assert door_threshold(security, people=4, far_per_attempt=1e-6) > family      # a stricter level
    # The threshold for 4 people at 1e-5 per attempt is the per-comparison threshold at 2.5e-6.
    assert family == pytest.approx(security.threshold_for(DEFAULT_FAR_PER_ATTEMPT / 4), abs=1e-4)


def test_best_template_ranking_counts_every_template(security):
    assert comparisons_per_attempt(10, 30, aggregation="best") == 30
    assert comparisons_per_attempt(10, 30, aggregation="mean") == 10
    assert comparisons_per_attempt(0) == 1
    assert door_threshold(security, people=10, templates=30, aggregation="best") > door_threshold(
        security, people=10, templates=30)


def test_threshold_between_and_beyond_the_table(security):
    t5, t6 = security.far[1e-5], security.far[1e-6]
    assert t5 <= security.threshold_for(3e-6) <= t6
    last = security.far[min(security.far)]
    assert security.threshold_for(min(security.far) / 100) >= last           # the fitted tail, never lower
    assert security.threshold_for(0.5) == security.far[max(security.far)]   # never looser than the table
    with pytest.raises(ValueError):
        security.threshold_for(0)
    with pytest.raises(ValueError):
        door_threshold(security, people=3, far_per_attempt=1.5)


def test_expected_grant_share_falls_with_the_threshold(security):
    family = door_level(security, people=4)
    office = door_level(security, people=311)
    assert 0.0 < office.expected_granted < family.expected_granted < 1.0
    assert family.expected_granted > 0.75       # a household: most single looks already pass
    assert security.granted_share(0.99) < 0.01 and security.granted_share(0.40) > 0.99


def test_a_manifest_without_calibration_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="models build"):
        Security.from_manifest({"id": "facenet-int8", "threshold": 0.69})
    with pytest.raises(ValueError, match="rebuild"):
        Security.from_manifest({"security": {"far": {}, "tail": {"a": 1, "b": -10},
                                             "same_person": {"thresholds": [0.5, 0.6], "granted": [1, 0.9]}}})


def test_calibrate_on_real_photographs(engine, faces_dir):
    """Calibration from real embeddings: different people score low, the same person high, tables ordered."""
    from edge.recognition import load_image

    folders = sorted(d for d in (faces_dir / "lfw_view1").iterdir()
                     if d.is_dir() and len(list(d.glob("*.jpg"))) >= 4)[:40]
    embeddings, identities = [], []
    for d in folders:
        for path in sorted(d.glob("*.jpg"))[:3]:
            faces = engine.faces(load_image(path), limit=1)
            if faces:
                embeddings.append(faces[0].embedding)
                identities.append(d.name)
    found = calibrate(np.stack(embeddings), np.array(identities))
    sec = Security.from_manifest(found)
    values = [sec.far[r] for r in sorted(sec.far, reverse=True)]
    assert values == sorted(values)
    one, two = found["by_probe"]["one photograph"], found["by_probe"]["two photographs"]
    assert one["comparisons"] == len(embeddings) * (len(folders) - 1)
    pairs = sum(n * (n - 1) // 2 for n in np.unique(identities, return_counts=True)[1])
    assert two["comparisons"] == pairs * (len(folders) - 1)
    assert found["different_person_comparisons"] == one["comparisons"] + two["comparisons"]
    assert 0.3 < sec.far[1e-3] < 0.9
    assert sec.granted_share(sec.far[1e-3]) > 0.8        # most same-person comparisons clear a 1e-3 threshold
    assert sec.tail[1] < 0
    np.testing.assert_allclose(sec.centre, np.stack(embeddings).mean(axis=0), atol=1e-5)
    plain = Security.from_manifest(calibrate(np.stack(embeddings), np.array(identities), centre=False))
    assert plain.centre is None


def test_effective_threshold_prefers_the_override_then_the_level_then_the_model(security):
    from edge.recognition.security import effective_threshold

    thr, why = effective_threshold(override=0.8, far_per_attempt=1e-5, security=security, people=4,
                                   model_threshold=0.69)
    assert thr == 0.8 and "administrator" in why
    thr, why = effective_threshold(override=None, far_per_attempt=1e-5, security=security, people=4,
                                   model_threshold=0.69)
    assert thr == door_threshold(security, people=4) and "100,000" in why and "4 people" in why
    thr, why = effective_threshold(override=None, far_per_attempt=1e-5, security=None, people=4,
                                   model_threshold=0.69)
    assert thr == 0.80 and "no security calibration" in why        # never the weaker per-pair 0.69


def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_a_stranger_with_two_photographs_gets_their_mean_as_a_third_look():
    """The door re-ranks a track's averaged embedding, so two photographs that each miss a person's template can
    together match it: the calibration counts the best of the three looks."""
    rng = np.random.default_rng(1)
    template, side = _unit(rng.normal(size=128)), rng.normal(size=128)
    side = _unit(side - (side @ template) * template)
    left, right = _unit(template + 1.5 * side), _unit(template - 1.5 * side)    # each 0.55 from the template
    resident = [_unit(template + 0.01 * rng.normal(size=128)) for _ in range(3)]
    embeddings = np.stack(resident + [left, right])
    identities = np.array(["resident"] * 3 + ["stranger"] * 2)
    singles, pairs, single_ids, pair_ids = door_looks(embeddings, identities)
    assert len(singles) == 5 and list(pair_ids) == ["resident"] * 3 + ["stranger"]
    looks = pairs[-1]
    assert looks.shape == (3, 128)
    np.testing.assert_allclose(looks[2], template, atol=1e-5)               # the mean is the template itself
    alone = max(float(left @ template), float(right @ template))
    assert alone < 0.6 and float(looks[2] @ template) > 0.99


def test_door_looks_cap_the_pairs_per_person():
    rng = np.random.default_rng(2)
    embeddings = np.stack([_unit(rng.normal(size=16)) for _ in range(8)])
    _, pairs, _, pair_ids = door_looks(embeddings, np.array(["a"] * 6 + ["b"] * 2), pairs_per_person=4)
    assert list(pair_ids) == ["a"] * 4 + ["b"]
    for looks in pairs:
        assert np.allclose(np.linalg.norm(looks, axis=1), 1.0, atol=1e-5)
