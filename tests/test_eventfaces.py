"""Encrypted face thumbnails of door decisions: round trip, secrecy on disk, retention by age and size."""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest

from edge.eventfaces import EventFaces, valid_name
from edge.keys import KeyRing

JPEG_MAGIC = b"\xff\xd8\xff"


class Clock:
    def __init__(self, now: float = 1_760_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def crop(faces_dir):
    """A real face: the middle of an LFW photograph, the size of the door's aligned crop."""
    image = cv2.imread(str(faces_dir / "face_recognition_examples/obama/obama.jpg"))
    h, w = image.shape[:2]
    side = min(h, w) // 2
    face = image[h // 2 - side // 2: h // 2 + side // 2, w // 2 - side // 2: w // 2 + side // 2]
    return cv2.resize(face, (160, 160))


def test_a_thumbnail_comes_back_as_the_face_and_is_never_readable_on_disk(tmp_path, crop):
    ring = KeyRing.generate()
    faces = EventFaces(tmp_path / "faces", ring)
    name = faces.keep(crop)
    assert valid_name(name)
    jpeg = faces.read(name)
    assert jpeg.startswith(JPEG_MAGIC)
    image = faces.image(name)
    assert image.shape == (160, 160, 3)
    assert np.abs(image.astype(int) - crop.astype(int)).mean() < 8          # the same face, JPEG-compressed
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert JPEG_MAGIC not in path.read_bytes(), path                    # grep the state directory
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert EventFaces(tmp_path / "faces", KeyRing.generate()).read(name) is None   # another key: nothing


def test_names_that_leave_the_folder_are_refused(tmp_path, crop):
    faces = EventFaces(tmp_path / "faces", KeyRing.generate())
    (tmp_path / "secret.jpg.fernet").write_bytes(b"x")
    for bad in ("../secret", "20250101/../../secret", "/etc/passwd", "", None, "20250101/123456-000001/x"):
        assert faces.read(bad) is None
    assert faces.read("20250101/123456-000001") is None                      # well-formed but absent


def test_oldest_thumbnails_go_first_when_over_the_size_budget(tmp_path, crop):
    clock = Clock()
    ring = KeyRing.generate()
    probe = EventFaces(tmp_path / "probe", ring)
    one = len((tmp_path / "probe").joinpath(probe.keep(crop) + ".jpg.fernet").read_bytes())
    faces = EventFaces(tmp_path / "faces", ring, max_bytes=int(one * 3.5), clock=clock)
    names = []
    for _ in range(6):
        names.append(faces.keep(crop))
        clock.now += 61
    kept = [n for n in names if faces.read(n) is not None]
    assert kept == names[-3:]
    count, size = faces.usage()
    assert count == 3 and size <= one * 3.5
    # a new instance (service restart) tallies what is on disk and keeps applying the budget
    again = EventFaces(tmp_path / "faces", ring, max_bytes=int(one * 2.5), clock=clock)
    assert again.prune() == 1
    assert [n for n in names if again.read(n) is not None] == names[-2:]


def test_thumbnails_older_than_the_retention_go(tmp_path, crop):
    clock = Clock()
    faces = EventFaces(tmp_path / "faces", KeyRing.generate(), days=2, clock=clock)
    old = faces.keep(crop)
    clock.now += 86400
    middle = faces.keep(crop)
    clock.now += 2 * 86400 + 60                                             # the first day is now too old
    new = faces.keep(crop)
    assert faces.read(old) is None
    assert faces.read(middle) is not None and faces.read(new) is not None
    assert not (tmp_path / "faces" / old.split("/")[0]).exists()


def test_disabled_or_failing_archive_keeps_nothing_and_does_not_raise(tmp_path, crop, caplog):
    assert EventFaces(tmp_path / "a", KeyRing.generate(), days=0).keep(crop) is None
    assert EventFaces(tmp_path / "b", KeyRing.generate()).keep(None) is None
    blocked = tmp_path / "c"
    blocked.write_text("a file where the folder should be")
    assert EventFaces(blocked, KeyRing.generate()).keep(crop) is None
    assert "cannot keep a face thumbnail" in caplog.text


def test_key_rotation_re_encrypts_thumbnails_and_drops_the_log_index(tmp_path, crop):
    from edge.accesslog import AccessLog
    from edge.config import Config
    from edge.eventindex import EventIndex
    from edge.keyrotation import rotate
    from edge.keys import init_keys, load_keyring
    from edge.store import DB_FILE_NAME, Store

    cfg = Config().replace("paths", state_dir=str(tmp_path / "state"))
    ring, _ = init_keys(cfg)
    store = Store.create(cfg.state_dir / DB_FILE_NAME, ring, bcrypt_rounds=4)
    log = AccessLog.open(cfg, keyring=ring)
    faces = EventFaces.open(cfg, ring)
    name = faces.keep(crop)
    log.append("unknown", similarity=0.2, photo=name)
    index = EventIndex(log, save_after=1)
    index.refresh()
    assert index.path.exists()
    old_key = cfg.key_file.read_text().strip().encode()
    rotate(store, log, faces)
    assert not index.path.exists()                                    # nothing left under the old key
    assert EventFaces.open(cfg, load_keyring(cfg)).read(name).startswith(JPEG_MAGIC)
    assert EventFaces.open(cfg, KeyRing(keys=[old_key])).read(name) is None
