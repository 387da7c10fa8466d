"""The encrypted user database: round trips, validation, secrecy, damage and locking."""

from __future__ import annotations

import logging
import os
import signal
import stat
import time

import numpy as np
import pytest
from cryptography.fernet import Fernet

from edge.config import DecisionConfig
from edge.errors import StoreError
from edge.keys import FileKeySource, KeyRing
from edge.store import (SCHEMA_VERSION, Store, StoreInputError, encode_payload, read_verified)

ROUNDS = 4  # bcrypt cost for tests; the product uses 12


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "edge-face.db"


@pytest.fixture
def store(db_path, ring):
    s = Store.create(db_path, ring, bcrypt_rounds=ROUNDS, lock_timeout=0.5)
    yield s
    s.close()


def reopen(path, ring, **kw):
    return Store(path, ring, bcrypt_rounds=ROUNDS, lock_timeout=0.5, **kw)


def unit(seed, dim=128):
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_every_field_survives_a_round_trip(store, db_path, ring):
    user = store.add_user(username="Zoë", email="Zoe@Example.org", password="correct horse",
                          display_name="Zoë Ünïcødé 渡辺", role="admin", status="active")
    vec = unit(1)
    tmpl = store.add_template(user.id, vec, model_id="facenet-int8:abc", source="camera", quality=0.83)
    store.update_settings(threshold=0.71, unlock_seconds=4.5, lockout_after=7)
    before = store.get_user(user.id)

    again = reopen(db_path, ring)
    after = again.get_user(user.id)
    for name in ("id", "username", "email", "display_name", "password_hash", "role", "status", "created",
                 "updated"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.username == "Zoë" and after.display_name == "Zoë Ünïcødé 渡辺" and after.role == "admin"
    [t] = after.templates
    assert (t.id, t.model_id, t.source, t.quality, t.created) == \
        (tmpl.id, "facenet-int8:abc", "camera", 0.83, tmpl.created)
    assert t.embedding.dtype == np.float32 and np.array_equal(t.embedding, vec)
    assert again.settings["threshold"] == 0.71 and again.settings["unlock_seconds"] == 4.5
    assert again.settings["lockout_after"] == 7
    assert again.revision == store.revision == 4  # create, add_user, add_template, update_settings
    assert again.check_password("zoe@example.org", "correct horse").id == user.id
    assert again.check_password("ZOË", "wrong horse!") is None


def test_names_and_emails_are_unique_without_case(store):
    store.add_user(username="Åsa", email="asa@example.org")
    with pytest.raises(StoreInputError, match="already taken"):
        store.add_user(username="åSA")
    with pytest.raises(StoreInputError, match="another user"):
        store.add_user(username="asa2", email="ASA@EXAMPLE.ORG")
    bob = store.add_user(username="bob")
    with pytest.raises(StoreInputError, match="already taken"):
        store.update_user(bob.id, username="ÅSA")
    assert store.find_user("ÅSA").username == "Åsa"
    assert store.find_user("Asa@Example.Org").username == "Åsa"
    assert [u.username for u in store.users()] == ["bob", "Åsa"]  # sorted without case


@pytest.mark.parametrize("bad, message", [
    ("", "must not be empty"), ("a@b", "must not contain '@'"), ("x" * 65, "longer than 64"),
    ("tab\there", "control characters")])
def test_bad_usernames_are_refused_with_a_reason(store, bad, message):
    with pytest.raises(StoreInputError, match=message):
        store.add_user(username=bad)
    assert store.users() == [] and store.revision == 1


def test_password_limit_is_72_utf8_bytes(store):
    exactly = "éüä" * 12  # 72 bytes
    user = store.add_user(username="anna", password=exactly, status="active")
    assert store.check_password("anna", exactly).id == user.id
    with pytest.raises(StoreInputError, match="at most 72 bytes") as err:
        store.add_user(username="berta", password=exactly + "a")
    assert "73" in str(err.value)
    with pytest.raises(StoreInputError, match="too long"):
        store.set_password(user.id, "x" * 73)
    assert store.check_password("anna", exactly + "a") is None  # never an exception at login
    with pytest.raises(StoreInputError, match="too short"):
        store.add_user(username="carl", password="short")


def test_check_password_refuses_disabled_and_passwordless_users(store):
    u = store.add_user(username="dora", password="dora-s-secret-1", status="active")
    store.add_user(username="door-only", password=None, status="active")
    assert store.check_password("dora", "dora-s-secret-1") is not None
    store.update_user(u.id, status="disabled")
    assert store.check_password("dora", "dora-s-secret-1") is None
    assert store.check_password("door-only", "") is None
    assert store.check_password("nobody", "dora-s-secret-1") is None


def test_files_hold_no_plaintext_and_are_private(tmp_path, db_path):
    key_source = FileKeySource(tmp_path / "db.key")
    key_source.create()
    ring = KeyRing(key_source)
    s = Store.create(db_path, ring, bcrypt_rounds=ROUNDS)
    u = s.add_user(username="zebrastripe", email="zebra@example.org", password="hunter2hunter2",
                   display_name="Zébra Ünïcode")
    vec = unit(7)
    s.add_template(u.id, vec, model_id="facenet-int8:secretmodel", source="cli", quality=0.9)
    s.add_user(username="second")  # so the backup generation holds the template too
    raw = db_path.read_bytes() + (tmp_path / "edge-face.db.bak").read_bytes()
    for needle in (b"zebrastripe", b"zebra@example.org", "Zébra Ünïcode".encode(), b"secretmodel",
                   vec.tobytes()[:16], vec.tobytes()[-16:], b"$2b$", b"EFDB"):
        assert needle not in raw
    for path in (tmp_path / "db.key", db_path, tmp_path / "edge-face.db.bak"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    key_text = (tmp_path / "db.key").read_text().strip()
    assert key_text not in repr(ring) and key_text not in repr(s)


def test_flipped_byte_is_a_clear_error_nothing_is_rewritten_and_the_backup_works(store, db_path, ring):
    store.add_user(username="first")
    store.add_user(username="second")  # revision 3; the backup holds revision 2
    data = bytearray(db_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    db_path.write_bytes(bytes(data))
    before = (db_path.read_bytes(), os.stat(db_path).st_mtime_ns)

    with pytest.raises(StoreError) as err:
        reopen(db_path, ring)
    message = str(err.value)
    assert "damaged or was tampered with" in message and "db restore --previous" in message
    assert "revision 2" in message
    # The store that was already open refuses to write over the damage too.
    with pytest.raises(StoreError, match="no longer decrypts"):
        store.add_user(username="third")
    assert (db_path.read_bytes(), os.stat(db_path).st_mtime_ns) == before

    fallback = reopen(db_path, ring, allow_backup=True)
    assert fallback.from_backup and fallback.revision == 2
    assert [u.username for u in fallback.users()] == ["first"]
    with pytest.raises(StoreError, match="read-only"):
        fallback.add_user(username="third")
    assert (db_path.read_bytes(), os.stat(db_path).st_mtime_ns) == before


def test_a_store_in_backup_mode_reports_the_damage_once_and_leaves_it_after_a_restore(store, db_path, ring, caplog):
    """The daemon refreshes every second and on every web request: a damaged file must not be decrypted and
    logged each time, but a repaired one must be picked up."""
    store.add_user(username="first")
    store.add_user(username="second")
    good = db_path.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x01
    db_path.write_bytes(bytes(damaged))
    fallback = reopen(db_path, ring, allow_backup=True)
    caplog.clear()
    for _ in range(5):
        assert fallback.refresh() is False
    assert len([r for r in caplog.records if "cannot re-read" in r.getMessage()]) == 1
    db_path.write_bytes(good)                         # what `edge-face db restore` leaves behind
    fallback.refresh()
    assert not fallback.from_backup and [u.username for u in fallback.users()] == ["first", "second"]


def test_wrong_key_is_a_clear_error_and_changes_nothing(store, db_path):
    store.add_user(username="someone")
    before = (db_path.read_bytes(), os.stat(db_path).st_mtime_ns)
    other = KeyRing.generate()
    with pytest.raises(StoreError, match="key is wrong"):
        reopen(db_path, other)
    assert (db_path.read_bytes(), os.stat(db_path).st_mtime_ns) == before


def test_missing_database_and_missing_key_say_what_to_do(tmp_path, ring):
    with pytest.raises(StoreError, match="db init"):
        reopen(tmp_path / "none.db", ring)
    with pytest.raises(StoreError, match="does not exist"):
        KeyRing(FileKeySource(tmp_path / "no.key"))


def test_create_never_overwrites(store, db_path, ring):
    with pytest.raises(StoreError, match="never overwritten"):
        Store.create(db_path, ring)


def test_old_schema_is_migrated_and_newer_schema_refused(db_path, ring):
    v1 = {"schema": 1, "revision": 5, "users": [{
        "id": "u1", "username": "legacy", "email": "", "display_name": "", "password_hash": "",
        "role": "member", "status": "active", "created": 1.0, "updated": 1.0,
        "templates": [{"id": "t1", "model_id": "m", "source": "cli", "quality": None, "created": 1.0,
                       "offset": 0, "dim": 128}]}]}
    vec = unit(3)
    db_path.write_bytes(ring.encrypt(encode_payload(v1, [vec])))
    s = reopen(db_path, ring)
    assert s.revision == 5 and s.settings == {n: getattr(DecisionConfig(), n) for n in s.settings}
    assert np.array_equal(s.find_user("legacy").templates[0].embedding, vec)
    s.update_settings(margin=0.1)
    assert reopen(db_path, ring).revision == 6

    newer = dict(v1, schema=SCHEMA_VERSION + 1)
    db_path.write_bytes(ring.encrypt(encode_payload(newer, [vec])))
    with pytest.raises(StoreError, match="newer than this edge-face"):
        reopen(db_path, ring)


def test_settings_are_validated_with_the_setting_named(store):
    with pytest.raises(StoreInputError, match="^threshold: must be between"):
        store.update_settings(threshold=2)
    with pytest.raises(StoreInputError, match="^frames_required: must not exceed frames_considered"):
        store.update_settings(frames_required=9)
    with pytest.raises(StoreInputError, match="^unlock_seconds: must not exceed door.max_unlock_seconds"):
        store.update_settings(unlock_seconds=30)
    with pytest.raises(StoreInputError, match="^lockout_after: must be a whole number"):
        store.update_settings(lockout_after="many")
    with pytest.raises(StoreInputError, match="^colour: unknown setting") as err:
        store.update_settings(colour="red")
    assert err.value.field == "colour"
    with pytest.raises(StoreInputError) as err:
        store.update_settings(frames_considered=2)
    assert err.value.field == "frames_required"   # the field the form marks, not found by reading the text
    assert store.revision == 1
    assert store.update_settings(frames_required=5, frames_considered=8)["frames_required"] == 5
    assert store.update_settings(threshold=None)["threshold"] is None  # back to the model's own threshold


def test_defaults_come_from_the_configuration(db_path, ring):
    s = Store.create(db_path, ring, defaults=DecisionConfig(threshold=0.66, unlock_seconds=2.0))
    assert s.settings["threshold"] == 0.66 and s.settings["unlock_seconds"] == 2.0


def test_gallery_has_active_users_of_this_model_only(store, caplog):
    a = store.add_user(username="active", status="active")
    p = store.add_user(username="pending")
    d = store.add_user(username="gone", status="active")
    for i, u in enumerate((a, p, d)):
        store.add_template(u.id, unit(i), model_id="m-new", source="cli")
    store.add_template(a.id, unit(9), model_id="m-old", source="cli")
    store.add_template(a.id, unit(10), model_id="m-new", source="upload")
    store.update_user(d.id, status="disabled")
    with caplog.at_level(logging.WARNING, logger="edge.store"):
        g = store.gallery("m-new")
        store.gallery("m-new")
    assert g.user_ids == [a.id, a.id] and g.matrix.shape == (2, 128) and g.matrix.dtype == np.float32
    assert np.allclose(g.matrix[0], unit(0)) and g.ignored == 1 and g.names[a.id] == "active"
    stale = [r for r in caplog.records if "another model" in r.getMessage()]
    assert len(stale) == 1  # reported once, not on every frame
    assert [(u.username, t.model_id) for u, t in store.stale_templates("m-new")] == [("active", "m-old")]
    assert len(store.gallery("m-old")) == 1
    empty = store.gallery("m-none")
    assert (empty.matrix @ unit(1)).shape == (0,)


def test_templates_are_normalised_and_validated(store):
    u = store.add_user(username="t")
    t = store.add_template(u.id, np.full(128, 3.0), model_id="m", source="cli")
    assert np.isclose(np.linalg.norm(t.embedding), 1.0)
    with pytest.raises(StoreInputError, match="finite"):
        store.add_template(u.id, np.full(128, np.nan), model_id="m")
    with pytest.raises(StoreInputError, match="source"):
        store.add_template(u.id, unit(1), model_id="m", source="webcam")
    with pytest.raises(StoreInputError, match="no user"):
        store.add_template("nope", unit(1), model_id="m")
    store.remove_template(t.id)
    assert store.get_user(u.id).templates == ()


def test_a_failed_transaction_changes_nothing(store, db_path, ring):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_user(username="ghost")
            assert store.find_user("ghost") is not None
            raise RuntimeError("boom")
    assert store.find_user("ghost") is None and store.revision == 1
    assert reopen(db_path, ring).find_user("ghost") is None


def test_transaction_groups_changes_into_one_revision(store):
    with store.transaction():
        a = store.add_user(username="a")
        store.add_template(a.id, unit(1), model_id="m", source="cli")
        store.update_user(a.id, status="active")
    assert store.revision == 2


def test_refresh_picks_up_another_writers_commit(store, db_path, ring):
    other = reopen(db_path, ring)
    assert other.refresh() is False
    store.add_user(username="new-face", status="active")
    assert other.refresh() is True
    assert other.find_user("new-face") is not None and other.revision == store.revision
    assert other.refresh() is False
    # A write from the other instance first reloads, so nothing is lost.
    other.add_user(username="second")
    store.refresh()
    assert {u.username for u in store.users()} == {"new-face", "second"}


def test_a_second_writer_gets_the_lock_error(store, db_path, ring):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold a write transaction open
        try:
            os.close(read_fd)
            holder = reopen(db_path, ring)
            with holder.transaction():
                os.write(write_fd, b"locked\n")
                time.sleep(30)
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 7) == b"locked\n"
        with pytest.raises(StoreError, match=rf"locked by another writer \(pid {pid}\)"):
            store.add_user(username="blocked")
        assert store.find_user("blocked") is None
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
    store.add_user(username="after")  # the kernel released the dead writer's lock
    assert reopen(db_path, ring).find_user("after") is not None


def test_read_verified_names_a_file_that_does_not_decrypt(store, db_path, tmp_path):
    data, revision = read_verified(db_path, store.keyring)
    assert revision == 1 and data == db_path.read_bytes()
    other = tmp_path / "other.db"
    other.write_bytes(Fernet(Fernet.generate_key()).encrypt(b"x"))
    with pytest.raises(StoreError, match="does not decrypt"):
        read_verified(other, store.keyring)


def test_two_admins_demoting_each_other_from_two_processes_leave_one_admin(store, db_path, ring):
    """The rule lives in the write transaction (file lock + reload), so the second writer sees the first."""
    a = store.add_user(username="anna", role="admin", status="active")
    b = store.add_user(username="ben", role="admin", status="active")
    other = reopen(db_path, ring)                 # a second process with the old revision in memory
    store.set_role(b.id, "member")
    with pytest.raises(StoreInputError, match="anna is the last active administrator"):
        other.set_role(a.id, "member")
    with pytest.raises(StoreInputError, match="last active administrator"):
        other.update_user(a.id, status="disabled")
    with pytest.raises(StoreInputError, match="last active administrator"):
        other.remove_user(a.id)
    assert reopen(db_path, ring).user("anna").is_admin and reopen(db_path, ring).user("anna").is_active
    member = store.set_role(store.add_user(username="cleo", status="disabled").id, "admin")
    assert member.status == "active"              # making someone admin activates them
    assert store.remove_user(a.id).username == "anna"   # another admin remains


def test_first_sign_up_becomes_the_admin_even_from_two_processes(store, db_path, ring):
    other = reopen(db_path, ring)                 # still thinks the database is empty
    first = store.sign_up(username="first", email="f@x.org", password="long enough")
    second = other.sign_up(username="second", email="s@x.org", password="long enough")
    assert (first.role, first.status) == ("admin", "active")
    assert (second.role, second.status) == ("member", "pending")
    assert reopen(db_path, ring).check_password("second", "long enough").id == second.id   # password kept
