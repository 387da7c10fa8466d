"""scripts/pi-check.sh's host-side parts: its argument errors and the embedding comparison it relies on.

The emulated run itself is scripts/pi-check.sh (run by .ci/run after the tests): it takes minutes and root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

PI_CHECK = REPO_ROOT / "scripts" / "pi-check.sh"
EMBEDDINGS = REPO_ROOT / "scripts" / "pi_embeddings.py"


@pytest.mark.parametrize("args, says", [(["--suite", "sid"], "--suite must be bookworm or trixie"),
                                        (["--bogus"], "unknown option --bogus"),
                                        (["--cache"], "--cache needs a directory")])
def test_bad_arguments_fail_with_one_clear_line(args, says):
    done = subprocess.run(["bash", str(PI_CHECK), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pi-check: FAILED") and says in lines[0], done.stderr


@pytest.fixture(scope="module")
def host_embeddings(tmp_path_factory, faces_dir, models_dir):
    out = tmp_path_factory.mktemp("pi") / "host.json"
    done = subprocess.run([sys.executable, str(EMBEDDINGS), "--models", str(models_dir), "--faces", str(faces_dir),
                           "--out", str(out), "--invokes", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def compare(models_dir, faces_dir, other, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EMBEDDINGS), "--models", str(models_dir), "--faces", str(faces_dir),
                           "--out", str(tmp_path / "mine.json"), "--invokes", "2", "--compare", str(other)],
                          capture_output=True, text=True, timeout=300)


def test_every_face_of_the_fixed_photographs_is_described(host_embeddings):
    result = json.loads(host_embeddings.read_text())
    counts = {photo: len(faces) for photo, faces in result["photographs"].items()}
    assert sum(counts.values()) == 9 and all(counts.values()), counts
    assert result["invoke_seconds"] > 0 and result["model"].startswith("facenet-int8")


def test_the_same_machine_agrees_with_itself(host_embeddings, models_dir, faces_dir, tmp_path):
    done = compare(models_dir, faces_dir, host_embeddings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "9 faces, lowest cosine 1.00000" in done.stdout


def test_one_drifted_face_fails_the_comparison_by_name(host_embeddings, models_dir, faces_dir, tmp_path):
    """An embedding at cosine ~0.998 (what a wrong kernel or quantisation would give) is caught and named."""
    other = json.loads(host_embeddings.read_text())
    photo = "face_recognition_examples/_scenes_multi_face/kit_with_rose.jpg"
    e = np.asarray(other["photographs"][photo][1]["embedding"])
    noise = np.random.default_rng(0).normal(size=e.shape)
    noise -= (noise @ e) * e
    drifted = e + 0.065 * noise / np.linalg.norm(noise)
    assert 0.997 < float(drifted @ e / np.linalg.norm(drifted)) < 0.999
    other["photographs"][photo][1]["embedding"] = drifted.tolist()
    tampered = tmp_path / "other.json"
    tampered.write_text(json.dumps(other))
    done = compare(models_dir, faces_dir, tampered, tmp_path)
    assert done.returncode == 1
    assert f"{photo} face 2: cosine 0.99" in done.stderr and "< 0.999" in done.stderr


def test_a_missing_face_fails_the_comparison(host_embeddings, models_dir, faces_dir, tmp_path):
    other = json.loads(host_embeddings.read_text())
    photo = "face_recognition_examples/_scenes_multi_face/two_people.jpg"
    other["photographs"][photo].pop()
    tampered = tmp_path / "other.json"
    tampered.write_text(json.dumps(other))
    done = compare(models_dir, faces_dir, tampered, tmp_path)
    assert done.returncode == 1 and f"{photo}: 2 face(s) here, 1 on" in done.stderr


def test_a_missing_prerequisite_fails_before_anything_is_built(tmp_path):
    """No venv (or not root): one line that says what to do, and no cache folder or root left behind."""
    env = dict(os.environ, EDGE_FACE_VENV=str(tmp_path / "no-venv"))
    cache = tmp_path / "cache"
    done = subprocess.run(["bash", str(PI_CHECK), "--cache", str(cache)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pi-check: FAILED (bookworm, arm64): "), done.stderr
    assert "run scripts/bootstrap.sh first" in lines[0] or "run as root" in lines[0]
    assert not cache.exists()
