"""Key sources: the key file, a systemd credential and a passphrase; rings with several keys."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet, InvalidToken

from edge.accesslog import AccessLog
from edge.config import Config
from edge.errors import StoreError
from edge.keyrotation import rotate
from edge.keys import (PBKDF2_ITERATIONS, CredentialKeySource, FileKeySource, KeyRing, init_keys,
                       key_source_for, load_keyring)
from edge.store import DB_FILE_NAME, Store


def make_cfg(tmp_path, **store):
    return Config().replace("paths", state_dir=str(tmp_path / "state")).replace("store", **store)


def test_key_file_is_created_private_and_never_overwritten(tmp_path):
    cfg = make_cfg(tmp_path)
    ring, created = init_keys(cfg)
    assert created and len(ring) == 1
    key_file = cfg.key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    content = key_file.read_bytes()
    with pytest.raises(StoreError, match="never overwritten"):
        FileKeySource(key_file).create()
    again, created = init_keys(cfg)  # an existing key is used as it is
    assert not created and key_file.read_bytes() == content
    token = ring.encrypt(b"secret")
    assert again.decrypt(token) == b"secret"


def test_keys_never_show_in_repr_or_errors(tmp_path):
    cfg = make_cfg(tmp_path)
    ring, _ = init_keys(cfg)
    key = cfg.key_file.read_text().strip()
    assert key not in repr(ring) and key not in repr(ring.source)
    damaged = key[:-3] + "!!="
    cfg.key_file.write_text(damaged + "\n")
    with pytest.raises(StoreError) as err:
        load_keyring(cfg)
    assert "line 1" in str(err.value) and damaged not in str(err.value) and key[:10] not in str(err.value)


def test_missing_and_empty_key_files_are_clear_errors(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(StoreError, match="does not exist; run `edge-face db init`"):
        load_keyring(cfg)
    cfg.state_dir.mkdir()
    cfg.key_file.write_text("\n")
    with pytest.raises(StoreError, match="is empty"):
        load_keyring(cfg)


def test_a_ring_with_several_keys_encrypts_with_the_newest_and_reads_all(tmp_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    path = tmp_path / "db.key"
    path.write_bytes(old + b"\n")
    ring = KeyRing(FileKeySource(path))
    old_token = ring.encrypt(b"before")
    assert ring.refresh() is False  # nothing changed: no re-read
    path.write_bytes(new + b"\n" + old + b"\n")
    assert ring.refresh() is True and len(ring) == 2
    assert ring.decrypt(old_token) == b"before"
    fresh = ring.encrypt(b"after")
    assert Fernet(new).decrypt(fresh) == b"after"
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(fresh)


def test_credential_source(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, key_source="credential", credential_name="edge-face-key")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(StoreError, match="CREDENTIALS_DIRECTORY is not set"):
        load_keyring(cfg)
    creds = tmp_path / "creds"
    creds.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with pytest.raises(StoreError, match="credential .* is not available"):
        load_keyring(cfg)
    key = Fernet.generate_key()
    (creds / "edge-face-key").write_bytes(key + b"\n")
    ring = load_keyring(cfg)
    assert Fernet(key).decrypt(ring.encrypt(b"x")) == b"x"
    assert isinstance(ring.source, CredentialKeySource)
    cfg.state_dir.mkdir()
    store = Store.create(cfg.state_dir / DB_FILE_NAME, ring)
    with pytest.raises(StoreError, match="cannot be rotated by edge-face"):
        rotate(store, AccessLog.open(cfg, keyring=ring))
    assert (creds / "edge-face-key").read_bytes() == key + b"\n"


def test_passphrase_source_derives_the_same_key_with_the_stored_salt(tmp_path):
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    cfg = make_cfg(tmp_path, key_source="passphrase", passphrase_file=str(secret))
    ring, created = init_keys(cfg)
    salt_file = cfg.state_dir / "db.salt"
    assert created and stat.S_IMODE(os.stat(salt_file).st_mode) == 0o600
    algorithm, iterations, _salt = salt_file.read_text().strip().split("$")
    assert algorithm == "pbkdf2-sha256" and int(iterations) >= PBKDF2_ITERATIONS >= 600_000
    store = Store.create(cfg.state_dir / DB_FILE_NAME, ring, bcrypt_rounds=4)
    store.add_user(username="pat")
    assert Store.open(cfg).find_user("pat") is not None  # derived again from file + salt

    secret.write_text("wrong horse battery staple\n")
    with pytest.raises(StoreError, match="key is wrong"):
        Store.open(cfg)
    secret.write_text("correct horse battery staple\n")

    prompted = key_source_for(cfg.replace("store", passphrase_file=""), prompt=lambda _: "correct horse battery staple")
    assert Store(cfg.state_dir / DB_FILE_NAME, KeyRing(prompted)).find_user("pat") is not None
    with pytest.raises(StoreError, match="needs store.passphrase_file"):
        key_source_for(cfg.replace("store", passphrase_file=""))


def test_passphrase_rotation_replaces_the_salt(tmp_path):
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple")
    cfg = make_cfg(tmp_path, key_source="passphrase", passphrase_file=str(secret))
    ring, _ = init_keys(cfg)
    Store.create(cfg.state_dir / DB_FILE_NAME, ring).close()
    before = (cfg.state_dir / "db.salt").read_text()
    store = Store.open(cfg, keyring=ring)
    rotate(store, AccessLog.open(cfg, keyring=ring))
    after = (cfg.state_dir / "db.salt").read_text()
    assert after != before and len(after.strip().splitlines()) == 1
    assert Store.open(cfg).revision == 1
