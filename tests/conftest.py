"""Shared fixtures: where the real photographs and the built models are.

Tests that need ``../shared/faces`` or the built models skip with a clear reason when they are absent; under CI
(``EDGE_FACE_STRICT=1``, set by ``.ci/run``) a missing prerequisite fails instead, so a green CI never hides
skipped work.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FACES_DIR = Path(os.environ.get("EDGE_FACE_FACES_DIR", REPO_ROOT.parent / "shared" / "faces"))
MODELS_DIR = Path(os.environ.get("EDGE_FACE_MODELS_DIR", REPO_ROOT / "models"))
LIVENESS_DIR = Path(os.environ.get("EDGE_FACE_LIVENESS_DIR", REPO_ROOT.parent / "shared" / "liveness"))


def missing(reason: str):
    """Skip (developer machine) or fail (CI) because a prerequisite is absent."""
    if os.environ.get("EDGE_FACE_STRICT") == "1":
        pytest.fail(f"prerequisite missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES_DIR / "MANIFEST.md").is_file():
        missing(f"face photographs not found at {FACES_DIR} (set EDGE_FACE_FACES_DIR)")
    return FACES_DIR


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not (MODELS_DIR / "manifest.json").is_file():
        missing(f"models not built in {MODELS_DIR}: run `edge-face models build`")
    return MODELS_DIR


@pytest.fixture(scope="session")
def liveness_dir() -> Path:
    if not (LIVENESS_DIR / "MANIFEST.md").is_file():
        missing(f"liveness data not found at {LIVENESS_DIR} (set EDGE_FACE_LIVENESS_DIR)")
    return LIVENESS_DIR


@pytest.fixture(scope="session")
def liveness_models(models_dir):
    """The real face-mesh and iris models, shared by the whole session."""
    from edge.liveness import LivenessModels

    with LivenessModels(models_dir=models_dir, num_threads=2) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def engine(models_dir):
    """The real recognition engine with the shipped (default) model, shared by the whole session."""
    from edge.recognition import FaceEngine

    eng = FaceEngine(models_dir=models_dir)
    yield eng
    eng.close()


def copy_models(models_dir: Path, dest: Path, ids=("facenet-int8",)) -> dict:
    """A models folder at ``dest`` with the manifest and the files of some models (``ids=None``: all of them), for
    tests that corrupt or remove a copy; returns its manifest."""
    import json
    import shutil

    from edge.recognition import models

    manifest = models.load_manifest(models_dir)
    dest.mkdir(parents=True, exist_ok=True)
    kept = [m for m in manifest["models"] if ids is None or m["id"] in ids]
    for entry in kept:
        shutil.copyfile(models_dir / entry["file"], dest / entry["file"])
    manifest = dict(manifest, models=kept)
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def camera_frame(path: Path, size=(640, 480), background: int = 60) -> np.ndarray:
    """A camera-sized BGR frame with a real photograph in the middle (an LFW face comes out ~110 px wide)."""
    import cv2

    img = cv2.imread(str(path))
    frame = np.full((size[1], size[0], 3), background, np.uint8)
    h, w = img.shape[:2]
    y, x = (size[1] - h) // 2, (size[0] - w) // 2
    frame[y:y + h, x:x + w] = img
    return frame


@pytest.fixture
def ring():
    """A fresh key ring: the database and access-log keys of one test."""
    from edge.keys import KeyRing
    return KeyRing.generate()


@pytest.fixture
def log(tmp_path, ring):
    """An empty encrypted access log in the test's own folder."""
    from edge.accesslog import AccessLog
    return AccessLog(tmp_path / "access.log", ring)
