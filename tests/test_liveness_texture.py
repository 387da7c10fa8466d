"""The texture cue (edge/liveness/texture.py) and its training script: the LBP features on inputs whose answer is
known, the committed model loaded the way the door loads it (and refused when corrupt), real frames from
../shared/liveness through the real function, and the training's determinism."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import ModelError
from edge.liveness import datasets, texture
from edge.recognition import models

from conftest import copy_models, missing

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "models" / texture.TEXTURE_FILE
DATA_LIST = REPO / "models" / "texture_training_list.txt"


def load_script():
    if "train_texture" in sys.modules:
        return sys.modules["train_texture"]
    spec = importlib.util.spec_from_file_location("train_texture", REPO / "scripts" / "train_texture.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules["train_texture"] = script  # its dataclasses look their module up
    spec.loader.exec_module(script)
    return script


# --- features ----------------------------------------------------------------------------------------------------

def test_lbp_of_a_flat_patch_and_of_a_lone_bright_pixel():
    flat = np.full((5, 5), 80, np.uint8)
    assert set(texture.lbp_codes(flat).ravel()) == {texture.UNIFORM[255]}  # every neighbour >= the centre
    peak = flat.copy()
    peak[2, 2] = 200
    assert texture.lbp_codes(peak)[1, 1, 0] == texture.UNIFORM[0]          # every neighbour below it
    # a code with four 0/1 transitions is not uniform: it lands in the last bin
    assert texture.UNIFORM[0b01010000] == texture.N_BINS - 1 and texture.UNIFORM[0b00001111] < texture.N_BINS - 1


def test_features_are_normalised_histograms_of_every_channel():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (texture.CROP, texture.CROP, 3), dtype=np.uint8)
    f = texture.features(crop)
    assert f.shape == (texture.N_FEATURES,) and f.dtype == np.float32
    hists = (f ** 2).reshape(-1, texture.N_BINS)  # square roots of histograms that each sum to 1
    assert np.allclose(hists.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="64x64"):
        texture.features(crop[:32])


def test_face_crop_turns_the_eyes_level():
    frame = np.full((480, 640, 3), 128, np.uint8)
    left, right = (270.0, 250.0), (370.0, 290.0)   # eyes on a 22-degree slope
    for x, y in (left, right):
        cv2.circle(frame, (int(x), int(y)), 6, (0, 0, 0), -1)
    box = (240, 200, 160, 180)
    landmarks = np.array([left, right, (320, 300), (290, 340), (350, 340)], np.float32)
    crop = texture.face_crop(frame, box, landmarks)
    assert crop.shape == (texture.CROP, texture.CROP, 3)
    ys, xs = np.nonzero(crop[..., 0] < 60)
    lefts, rights = ys[xs < texture.CROP / 2], ys[xs >= texture.CROP / 2]
    assert abs(lefts.mean() - rights.mean()) < 1.5
    assert texture.texture_score(texture.load_texture_model(COMMITTED), frame, (700, 10, 50, 50), landmarks) == 0.0


# --- the committed model -----------------------------------------------------------------------------------------

def test_committed_model_is_small_and_tied_to_its_data_list():
    assert COMMITTED.stat().st_size < 1_000_000
    model = texture.load_texture_model(COMMITTED)
    assert 0.5 <= model.threshold < 1.0 and model.min_looks >= 2
    with np.load(COMMITTED) as data:
        recorded = str(data["data_list_sha256"])
    assert hashlib.sha256(DATA_LIST.read_bytes()).hexdigest() == recorded
    lines = [ln for ln in DATA_LIST.read_text().splitlines() if ln and not ln.startswith("#")]
    # the training data holds none of the bench's held-out subjects or clips
    held_out = ("/0005/", "/0006/", "/0007/", "/0008/", "/0009/", "lp_d13", "lp_d14", "lp_s18", "sad_")
    assert lines and not [ln for ln in lines if any(h in ln for h in held_out)]
    assert {ln.split("\t")[0] for ln in lines} == {"live", "attack"}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shape"])
def test_a_corrupt_model_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / texture.TEXTURE_FILE
    if damage == "garbage":
        path.write_bytes(b"not a model")
    elif damage == "truncated":
        path.write_bytes(COMMITTED.read_bytes()[:3000])
    else:
        model = texture.load_texture_model(COMMITTED)
        texture.TextureModel(weights=model.weights[:10], bias=0.0, mean=model.mean[:10], scale=model.scale[:10],
                             threshold=0.9, min_looks=3).save(path)
    with pytest.raises(ModelError) as err:
        texture.load_texture_model(path)
    assert str(path) in str(err.value) and "edge-face models build" in str(err.value)
    with pytest.raises(ModelError, match="is missing"):
        texture.load_texture_model(tmp_path / "nothing.npz")


@pytest.fixture
def built(models_dir):
    """The built models folder, once its manifest lists the texture model (built before it: rebuild)."""
    if texture.TEXTURE_MODEL_ID not in models.model_ids(models.load_manifest(models_dir)):
        missing(f"{models_dir}/manifest.json was built before the texture model: run `edge-face models build`")
    return models_dir


def test_the_door_loads_it_through_the_manifest_and_refuses_a_changed_file(built, tmp_path):
    models_dir = built
    copy_models(models_dir, tmp_path, ids=("texture",))
    assert texture.load_from_manifest(tmp_path).threshold == texture.load_texture_model(COMMITTED).threshold
    data = bytearray((tmp_path / texture.TEXTURE_FILE).read_bytes())
    data[-200] ^= 0x01
    (tmp_path / texture.TEXTURE_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest.*edge-face models build"):
        texture.load_from_manifest(tmp_path)
    copy_models(models_dir, tmp_path / "old", ids=("facenet-int8",))   # a manifest from before the texture cue
    with pytest.raises(ModelError, match="texture_lbp.npz.*not in.*edge-face models build"):
        texture.load_from_manifest(tmp_path / "old")


def test_the_builder_lists_the_committed_model_with_its_hash(built):
    entry = models.model_entry(models.load_manifest(built), texture.TEXTURE_MODEL_ID)
    assert entry["file"] == texture.TEXTURE_FILE
    assert entry["sha256"] == hashlib.sha256(COMMITTED.read_bytes()).hexdigest()


# --- real frames -------------------------------------------------------------------------------------------------

def faces_of(engine, frames):
    out = []
    for t, frame in frames:
        found = engine.detect(frame, max_side=320)
        if found:
            out.append((t, frame, max(found, key=lambda d: d.box[2] * d.box[3])))
    return out


def track_of(model, seen, every=1):
    track = texture.TextureTrack(model)
    probs = [texture.texture_score(model, frame, face.box, face.landmarks) for _, frame, face in seen[::every]]
    for p in probs:
        track.add(p)
    return track, probs


def test_training_on_a_small_subset_is_repeatable_to_the_byte(liveness_dir, engine, tmp_path):
    """The script's own steps (detector, crop, features, Newton fit, .npz writer) twice on the same real frames
    give the same file; the full run is checked the same way by hand (see docs/liveness.md)."""
    from edge.liveness import synth

    script = load_script()
    ex = script.Extractor.__new__(script.Extractor)
    ex.engine = engine
    live = datasets.nuaa_sequences(liveness_dir, "live")[0]
    spoof = datasets.nuaa_sequences(liveness_dir, "spoof")[0]
    assert live.subject == spoof.subject == "0001"  # a training subject

    def tracks():
        out = []
        for seq, label in ((live, 0), (spoof, 1)):
            times, feats, _ = ex.features(list(seq.frames())[:10])
            out.append(script.Track(name=seq.name, label=label, source="nuaa", group="0001", split="train",
                                    items=[], times=times, feats=feats))
        _, still = next(live.frames())
        face = ex.face(still)
        renders = datasets.decimate(synth.attack("phone-photo", synth.portrait(still, face.box), seed=3,
                                                 seconds=1.5), script.LOOK_FPS)
        times, feats, _ = ex.features(renders)
        out.append(script.Track(name="phone", label=1, source="phone-photo", group="0001", split="train",
                                items=[], times=times, feats=feats))
        return out

    first, second = tracks(), tracks()
    for a, b in zip(first, second):
        assert len(a.feats) >= 8 and np.array_equal(a.feats, b.feats)
    script.train(first, 100.0).save(tmp_path / "a.npz")
    script.train(second, 100.0).save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    model = texture.load_texture_model(tmp_path / "a.npz")
    live_p, spoof_p = (model.probability(t.feats).mean() for t in first[:2])
    assert spoof_p > 0.5 > live_p  # it learnt its own training frames


@pytest.fixture(scope="module")
def committed():
    return texture.load_texture_model(COMMITTED)


def test_a_held_out_printed_photograph_is_vetoed(liveness_dir, engine, committed):
    """Subject 0005 is held out of training: its printed photograph, moved in front of the camera, is vetoed
    within the first looks; the same person's live sequence is not."""
    prints = {s.name: s for s in datasets.nuaa_sequences(liveness_dir, "spoof")}
    track, probs = track_of(committed, faces_of(engine, prints["nuaa-spoof-0005_00_00_01"].frames()))
    assert len(probs) >= 40 and track.vetoed
    early = texture.TextureTrack(committed)
    assert any(early.add(p) for p in probs[:6])
    live = {s.name: s for s in datasets.nuaa_sequences(liveness_dir, "live")}
    track, probs = track_of(committed, faces_of(engine, live["nuaa-live-0005_00_00_02"].frames()))
    assert len(probs) >= 50 and not track.vetoed


def test_a_held_out_live_clip_is_not_vetoed(liveness_dir, engine, committed):
    clip = next(c for c in datasets.clip_sequences(liveness_dir) if c.subject == "lp_d13")
    script = load_script()
    seen = faces_of(engine, datasets.decimate(clip.frames(), script.LOOK_FPS))
    track, probs = track_of(committed, seen)
    assert len(probs) >= 80 and not track.vetoed and track.mean < committed.threshold - 0.2
