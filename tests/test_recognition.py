"""The recognition pipeline end to end: the real YuNet and TFLite FaceNet on real photographs.

Every photograph is embedded once per session (``deepface_faces``); the tests then compare embeddings.
"""

from __future__ import annotations

import csv
import threading

import cv2
import numpy as np
import pytest

from conftest import copy_models
from edge.errors import ImageError, ModelError
from edge.recognition import Face, FaceEngine, Quality, load_image
from edge.recognition.match import best_per_user, cosine

# Measured on this machine with facenet-int8 at its door threshold: 508/520 = 97.7% (see the report).
MIN_PAIRS_ACCURACY = 0.95


@pytest.fixture(scope="session")
def deepface_faces(engine, faces_dir):
    """The largest face of every photograph that deepface_unit/pairs.csv mentions (None if none was found)."""
    root = faces_dir / "deepface_unit"
    with open(root / "pairs.csv", newline="") as fh:
        pairs = [(r["path_a"], r["path_b"], r["same"] == "1") for r in csv.DictReader(fh)]
    faces = {}
    for name in sorted({p for a, b, _ in pairs for p in (a, b)}):
        found = engine.faces(load_image(root / name))
        faces[name] = found[0] if found else None
    return pairs, faces


def _pair_scores(deepface_faces):
    pairs, faces = deepface_faces
    scores = []
    for a, b, same in pairs:
        fa, fb = faces[a], faces[b]
        score = cosine(fa.embedding, fb.embedding) if fa is not None and fb is not None else -1.0
        scores.append((score, same))
    return scores


def test_engine_describes_its_model(engine):
    assert engine.embedding_size == 128
    name, _, digest = engine.model_id.partition(":")
    assert name == "facenet-int8" and len(digest) == 16
    assert 0.3 < engine.threshold < 0.95


def test_every_deepface_photograph_has_a_face(deepface_faces):
    _, faces = deepface_faces
    missing = [name for name, face in faces.items() if face is None]
    assert missing == []


def test_deepface_pairs_are_separated_at_the_door_threshold(engine, deepface_faces):
    scores = _pair_scores(deepface_faces)
    correct = sum((s >= engine.threshold) == same for s, same in scores)
    accuracy = correct / len(scores)
    same_pass = sum(s >= engine.threshold for s, same in scores if same)
    n_same = sum(same for _, same in scores)
    print(f"\ndeepface_unit pairs at threshold {engine.threshold:.3f}: {correct}/{len(scores)} = "
          f"{accuracy * 100:.1f}% (same-person accepted {same_pass}/{n_same})")
    assert len(scores) == 520
    assert accuracy >= MIN_PAIRS_ACCURACY


def test_different_people_are_not_accepted_at_the_door_threshold(engine, deepface_faces):
    false_accepts = [s for s, same in _pair_scores(deepface_faces) if not same and s >= engine.threshold]
    assert false_accepts == []


def test_embeddings_are_unit_float32(deepface_faces):
    _, faces = deepface_faces
    face = next(f for f in faces.values() if f is not None)
    assert isinstance(face, Face) and isinstance(face.quality, Quality)
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (128,)
    assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
    assert face.landmarks.shape == (5, 2) and face.crop.shape == (160, 160, 3)


@pytest.mark.parametrize("relative, count", [
    ("deepface_unit/_extra_not_identity_labeled/couple.jpg", 2),
    ("face_recognition_examples/_scenes_multi_face/kit_with_rose.jpg", 2),
    ("face_recognition_examples/_scenes_multi_face/two_people.jpg", 2),
    ("face_recognition_examples/_scenes_multi_face/obama_and_biden.jpg", 3),   # and a girl, lower right
    ("facenet_pytorch_samples/_scenes_multi_face/multiface.jpg", 6),
])
def test_multi_face_scenes_give_every_face_largest_first(engine, faces_dir, relative, count):
    faces = engine.faces(load_image(faces_dir / relative))
    assert len(faces) == count
    areas = [f.box[2] * f.box[3] for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_same_person_in_a_scene_is_found_among_strangers(engine, faces_dir):
    """Obama's portrait matches the Obama in the two-person scene and not Biden."""
    portrait = engine.enrollment_face(load_image(faces_dir / "face_recognition_examples/obama/obama.jpg"))
    biden = engine.enrollment_face(load_image(faces_dir / "face_recognition_examples/biden/biden.jpg"))
    scene = engine.faces(load_image(faces_dir / "face_recognition_examples/_scenes_multi_face/obama_and_biden.jpg"))
    gallery = (["obama", "biden"], np.stack([portrait.embedding, biden.embedding]))
    ranked = [best_per_user(face.embedding, gallery) for face in scene[:2]]
    winners = {r[0][0] for r in ranked}
    assert winners == {"obama", "biden"}
    assert all(r[0][1] >= engine.threshold > r[1][1] for r in ranked)


def test_huge_photograph_is_detected_downscaled_and_embedded_from_full_resolution(engine, faces_dir):
    """A 4x upscaled photograph (5.6k pixels wide) gives the same person with a near-identical embedding."""
    image = load_image(faces_dir / "face_recognition_examples/obama/obama.jpg")
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    small_face, big_face = engine.faces(image)[0], engine.faces(big)[0]
    assert big_face.box[2] == pytest.approx(4 * small_face.box[2], rel=0.1)
    assert cosine(small_face.embedding, big_face.embedding) > 0.95


def test_enrollment_accepts_one_good_face(engine, faces_dir):
    face = engine.enrollment_face(load_image(faces_dir / "face_recognition_examples/obama/obama.jpg"))
    assert face.quality.ok and face.quality.reasons == []


def test_enrollment_refuses_two_faces(engine, faces_dir):
    image = load_image(faces_dir / "deepface_unit/_extra_not_identity_labeled/couple.jpg")
    with pytest.raises(ImageError, match="two faces in the photograph"):
        engine.enrollment_face(image)


def test_enrollment_refuses_a_photograph_without_a_face(engine, faces_dir):
    image = load_image(faces_dir / "face_recognition_examples/obama/obama.jpg")
    h, w = image.shape[:2]
    landscape = cv2.resize(image[: h // 8, : w // 8], (w, h))      # a corner of the background, enlarged
    with pytest.raises(ImageError, match="no face"):
        engine.enrollment_face(landscape)


def test_enrollment_refuses_a_small_face_with_its_size(engine, faces_dir):
    image = load_image(faces_dir / "face_recognition_examples/obama/res_obama-240p.jpg")
    with pytest.raises(ImageError, match=r"too small \(\d+ px; at least 80 px\)"):
        engine.enrollment_face(image)


def test_enrollment_refuses_dark_and_blurry_photographs(engine, faces_dir):
    image = load_image(faces_dir / "face_recognition_examples/obama/obama.jpg")
    dark = (image.astype(np.float32) * 0.2).astype(np.uint8)
    with pytest.raises(ImageError, match="too dark"):
        engine.enrollment_face(dark)
    size = engine.faces(image)[0].size
    blurred = cv2.GaussianBlur(image, (0, 0), size / 30)
    with pytest.raises(ImageError, match="too blurry"):
        engine.enrollment_face(blurred)


def test_flip_averaging_is_an_option(models_dir, faces_dir):
    image = load_image(faces_dir / "face_recognition_examples/obama/obama.jpg")
    with FaceEngine(models_dir=models_dir, flip_average=False, num_threads=1) as plain:
        with FaceEngine(models_dir=models_dir, flip_average=True, num_threads=1) as flipped:
            a, b = plain.faces(image)[0].embedding, flipped.faces(image)[0].embedding
    assert 0.9 < cosine(a, b) < 0.9999        # close, but the mirror image did change it


def test_two_threads_share_one_engine(engine, faces_dir):
    images = [load_image(faces_dir / p) for p in ("face_recognition_examples/obama/obama.jpg",
                                                  "face_recognition_examples/biden/biden.jpg")]
    expected = [engine.faces(im)[0].embedding for im in images]
    errors, results = [], {0: [], 1: []}

    def work(i):
        try:
            for _ in range(6):
                results[i].append(engine.faces(images[i])[0].embedding)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in (0, 1):
        assert all(cosine(e, expected[i]) > 0.9999 for e in results[i])


def test_non_image_arrays_are_image_errors(engine):
    with pytest.raises(ImageError, match="BGR image"):
        engine.faces(np.zeros((100, 100), np.uint8))
    with pytest.raises(ImageError, match="BGR image"):
        engine.faces(np.zeros((100, 100, 3), np.float32))


def test_missing_models_folder_says_how_to_build(tmp_path):
    with pytest.raises(ModelError, match="models build"):
        FaceEngine(models_dir=tmp_path / "nowhere")


def test_corrupt_model_copy_is_refused(models_dir, tmp_path):
    copy = tmp_path / "models"
    copy_models(models_dir, copy, ids=("facenet-int8", "yunet"))
    data = bytearray((copy / "facenet_int8.tflite").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\0" * 64
    (copy / "facenet_int8.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest"):
        FaceEngine(models_dir=copy)


def test_detector_swapped_for_another_file_is_refused(models_dir, tmp_path):
    copy = tmp_path / "models"
    copy_models(models_dir, copy, ids=("facenet-int8", "yunet"))
    (copy / "face_detection_yunet_2023mar.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="models build"):
        FaceEngine(models_dir=copy)


def test_closed_engine_cannot_be_used(models_dir):
    eng = FaceEngine(models_dir=models_dir, num_threads=1)
    eng.close()
    eng.close()
    with pytest.raises(RuntimeError, match="closed"):
        eng.faces(np.zeros((64, 64, 3), np.uint8))
