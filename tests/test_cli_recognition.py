"""``edge-face faces`` and ``edge-face verify``: output, exit codes, and bad input without tracebacks.

The CLI runs in-process through edge.cli.main with a real TOML configuration in tmp_path.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import copy_models
from edge.cli import main

OBAMA = "face_recognition_examples/obama/obama.jpg"
OBAMA_2 = "face_recognition_examples/obama/obama2.jpg"
BIDEN = "face_recognition_examples/biden/biden.jpg"
TWO_PEOPLE = "face_recognition_examples/_scenes_multi_face/two_people.jpg"


def _config(tmp_path, models_dir, name="config.toml"):
    path = tmp_path / name
    path.write_text(f'[paths]\nmodels_dir = "{models_dir}"\nstate_dir = "{tmp_path}"\n'
                    f'[recognition]\nnum_threads = 1\n')
    return str(path)


@pytest.fixture
def cli(tmp_path, models_dir, capsys):
    config = _config(tmp_path, models_dir)

    def run(*args):
        code = main(["--config", config, *map(str, args)])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err
    return run


def test_verify_same_person_exits_0(cli, faces_dir):
    code, out, _ = cli("verify", faces_dir / OBAMA, faces_dir / OBAMA_2)
    assert code == 0
    assert "same person" in out


def test_verify_different_people_exits_1_with_json(cli, faces_dir):
    code, out, _ = cli("verify", "--json", faces_dir / OBAMA, faces_dir / BIDEN)
    assert code == 1
    result = json.loads(out)
    assert result["same_person"] is False
    assert result["similarity"] < result["threshold"]
    assert result["model"].startswith("facenet-int8:")


def test_verify_refuses_a_photograph_with_two_faces(cli, faces_dir):
    code, out, err = cli("verify", faces_dir / OBAMA, faces_dir / TWO_PEOPLE)
    assert code == 2 and out == ""
    assert "2 faces in the photograph" in err


def test_verify_unreadable_file_exits_2(cli, faces_dir, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    code, _, err = cli("verify", faces_dir / OBAMA, bad)
    assert code == 2
    assert "bad.jpg" in err and "not an image file" in err


def test_faces_json_lines_one_object_per_image(cli, faces_dir):
    code, out, _ = cli("faces", "--json", faces_dir / OBAMA, faces_dir / TWO_PEOPLE)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [len(rec["faces"]) for rec in lines] == [1, 2]
    face = lines[0]["faces"][0]
    assert set(face) >= {"box", "score", "quality", "embedding"}
    assert len(face["embedding"]) == 128
    assert abs(np.linalg.norm(face["embedding"]) - 1.0) < 1e-3
    assert face["quality"]["ok"] is True
    assert len(face["landmarks"]) == 5
    mesh = np.array(face["mesh"])                      # the liveness face mesh: 468 points on the face
    x, y, w, h = face["box"]
    assert mesh.shape == (468, 2)
    assert np.median(mesh[:, 0]) == pytest.approx(x + w / 2, abs=0.25 * w)
    assert np.median(mesh[:, 1]) == pytest.approx(y + h / 2, abs=0.25 * h)


def test_faces_text_output_and_a_bad_file_among_good_ones(cli, faces_dir, tmp_path):
    missing = tmp_path / "absent.jpg"
    code, out, err = cli("faces", faces_dir / OBAMA, missing)
    assert code == 2                                  # the good photograph is still reported
    assert "1 face" in out and "box x=" in out and "quality: good" in out
    assert "absent.jpg: no such file" in err


def test_missing_models_say_how_to_build_them(tmp_path, faces_dir, capsys):
    config = _config(tmp_path, tmp_path / "no-models")
    code = main(["--config", config, "verify", str(faces_dir / OBAMA), str(faces_dir / BIDEN)])
    err = capsys.readouterr().err
    assert code == 2
    assert "edge-face models build" in err and "Traceback" not in err


def test_corrupt_model_is_reported_not_raised(tmp_path, models_dir, faces_dir, capsys):
    copy = tmp_path / "models"
    copy_models(models_dir, copy, ids=("facenet-int8", "yunet"))
    (copy / "facenet_int8.tflite").write_bytes(b"\0" * 4096)
    config = _config(tmp_path, copy)
    code = main(["--config", config, "faces", str(faces_dir / OBAMA)])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not match the manifest" in err and "Traceback" not in err


# --- verify's threshold, identify, enroll --folder -------------------------------------------------------------

def test_verify_uses_the_manifests_per_comparison_threshold_and_says_so(cli, faces_dir, models_dir):
    """Two clear photographs of one person (similarity about 0.76) are the same person at the manifest's
    per-comparison threshold; the door's stricter threshold is for comparisons with every enrolled person."""
    manifest = json.loads((models_dir / "manifest.json").read_text())
    per_comparison = next(m for m in manifest["models"] if m["id"] == "facenet-int8")["threshold"]
    a, b = faces_dir / "deepface_unit/id01/img1.jpg", faces_dir / "deepface_unit/id01/img10.jpg"
    code, out, _ = cli("verify", a, b)
    assert code == 0 and "same person" in out
    assert f"threshold {per_comparison:.3f}" in out and "per-comparison" in out
    code, out, _ = cli("verify", "--json", "--threshold", "0.9", a, b)
    result = json.loads(out)
    assert code == 1 and result["threshold"] == 0.9 and result["threshold_source"] == "given with --threshold"


@pytest.fixture
def door_cli(tmp_path, cli, faces_dir):
    """A database with three people enrolled from folders of real photographs."""
    import os

    assert cli("db", "init")[0] == 0
    root = tmp_path / "people"
    for name, person in (("alice", "id01"), ("bob", "id02"), ("carol", "id03")):
        for photo in sorted((faces_dir / "deepface_unit" / person).glob("*.jpg"))[:3]:
            (root / name).mkdir(parents=True, exist_ok=True)
            os.symlink(photo, root / name / photo.name)
    (root / "nobody").mkdir()
    os.symlink(faces_dir / TWO_PEOPLE, root / "nobody" / "two.jpg")
    return cli, root


def test_enroll_folder_creates_members_and_summarises_what_was_skipped(door_cli):
    cli, root = door_cli
    code, out, _ = cli("enroll", "--folder", root)
    assert code == 0
    assert "alice: 3 photograph(s) enrolled (new user)" in out and "carol: 3" in out
    assert "two.jpg" in out and "two faces" in out and "nobody enrolled" in out
    assert "9 template(s) for 3 user(s); 3 user(s) created; 2 skipped" in out
    code, out, _ = cli("user", "list")
    assert "alice" in out and "active" in out
    code, _, err = cli("enroll", "--folder", root / "missing")
    assert code == 2 and "not a folder" in err and "Traceback" not in err
    code, _, err = cli("enroll", "alice")
    assert code == 2 and "at least one photograph" in err


def test_identify_ranks_like_the_door_and_prints_the_decision(door_cli, faces_dir):
    cli, root = door_cli
    cli("enroll", "--folder", root)
    probe = sorted((faces_dir / "deepface_unit" / "id01").glob("*.jpg"))[5]
    stranger = faces_dir / "deepface_unit" / "id05" / "img16.jpg"
    code, out, _ = cli("identify", probe)
    assert code == 0 and "would let in alice" in out and "3 people enrolled; door threshold" in out
    code, out, _ = cli("identify", "--json", stranger, probe)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1                                    # the stranger's photograph lets nobody in
    assert lines[0]["faces"][0]["granted"] is False and lines[0]["faces"][0]["decision"] == "unknown"
    assert lines[1]["faces"][0]["user"] == "alice" and lines[1]["faces"][0]["ranking"][0]["user"] == "alice"
    assert lines[1]["threshold"] == lines[0]["threshold"] and "security level" in lines[1]["threshold_source"]
