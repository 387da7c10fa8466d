"""Bulk enrolment from a folder of real photographs: who is created, what is skipped and why."""

from __future__ import annotations

import os

import pytest

from edge.enrol_folder import FolderError, enrol_folder
from edge.keys import KeyRing
from edge.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "edge-face.db", KeyRing.generate(), bcrypt_rounds=4)
    yield s
    s.close()


def link(src, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dest)


def test_folder_enrolment_creates_members_and_reports_what_it_skipped(tmp_path, store, engine, faces_dir):
    deepface = faces_dir / "deepface_unit"
    root = tmp_path / "people"
    blix = sorted((deepface / "id01").glob("*.jpg"))
    for p in blix[:3]:
        link(p, root / "hans" / p.name)
    link(blix[0], root / "hans" / "zz_again.jpg")                                    # the same photograph twice
    (root / "hans" / "notes.txt").write_text("not a photo")
    link(faces_dir / "deepface_unit" / "_extra_not_identity_labeled" / "couple.jpg", root / "crowd" / "couple.jpg")
    for p in sorted((deepface / "id02").glob("*.jpg"))[:2]:
        link(p, root / "john" / p.name)
    existing = store.add_user(username="john", status="pending")

    report = enrol_folder(store, engine, root, threshold=engine.threshold)

    assert report.created == ["hans"]                       # crowd gave no usable photograph: not created
    assert report.enrolled == {"hans": 3, "john": 2}
    hans = store.find_user("hans")
    assert hans.status == "active" and hans.role == "member"
    assert store.get_user(existing.id).status == "pending"  # an existing user is not changed, only enrolled
    reasons = {os.path.basename(p): r for p, r in report.skipped}
    assert "near-duplicate" in reasons["zz_again.jpg"]
    assert "not a photograph" in reasons["notes.txt"]
    assert "faces" in reasons["couple.jpg"]
    assert "no usable photograph" in reasons["crowd"]
    gallery = store.gallery(engine.model_id)
    assert sorted(gallery.user_ids).count(hans.id) == 3


def test_a_template_like_another_person_is_reported(tmp_path, store, engine, faces_dir):
    photos = sorted((faces_dir / "deepface_unit" / "id03").glob("*.jpg"))
    for p in photos[:2]:
        link(p, tmp_path / "a" / "person" / p.name)
    for p in photos[2:4]:
        link(p, tmp_path / "b" / "alias" / p.name)              # the same man under another name
    enrol_folder(store, engine, tmp_path / "a", threshold=engine.threshold)
    report = enrol_folder(store, engine, tmp_path / "b", threshold=engine.threshold)
    assert report.lookalikes and {other for _, other, _ in report.lookalikes} == {"person"}


def test_a_folder_without_person_folders_is_refused(tmp_path, store, engine):
    with pytest.raises(FolderError, match="not a folder"):
        enrol_folder(store, engine, tmp_path / "missing", threshold=0.7)
    (tmp_path / "flat").mkdir()
    with pytest.raises(FolderError, match="sub-folder"):
        enrol_folder(store, engine, tmp_path / "flat", threshold=0.7)


def test_camera_style_enrolment_keeps_the_most_different_frames_and_warns_of_lookalikes(store, engine, faces_dir):
    """Many frames in, a few different ones kept; a face like another enrolled person carries a warning."""
    from edge.enrolment import enrol
    from edge.recognition import load_image

    photos = sorted((faces_dir / "deepface_unit" / "id01").glob("*.jpg"))
    frames = [(p.name, load_image(p)) for p in photos[:6]]
    frames += [(f"{photos[0].name} again", load_image(photos[0]))]             # a repeated frame
    alice = store.add_user(username="alice", status="active")
    results = enrol(store, engine, alice.id, frames, source="camera", choose=3)
    kept = [r for r in results if r.ok]
    assert len(kept) == 3 and len(store.get_user(alice.id).templates) == 3
    reasons = " ".join(" ".join(r.reasons) for r in results if not r.ok)
    assert "near-duplicate" in reasons and "most different frames were kept" in reasons
    twin = store.add_user(username="alias", status="active")
    again = enrol(store, engine, twin.id, [(photos[6].name, load_image(photos[6]))], source="upload",
                  lookalike_threshold=0.6)
    assert again[0].ok and "looks like alice" in again[0].warnings[0]
