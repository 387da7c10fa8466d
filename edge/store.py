"""The encrypted user database: users, face templates and the run-time settings, in one Fernet-encrypted file.

File layout (``<state_dir>/edge-face.db``): one Fernet token over the payload
``b"EFDB" + u32 big-endian length + JSON + float32 blob``. The JSON holds the schema version, the revision
counter, the settings an administrator changed, a table of model ids and the users with one compact row per
template; all template vectors live, in row order, in one little-endian float32 blob. A database of 10,000
users x 5 templates is about 40 MB and loads in well under a second (scripts/bench_store.py); no pickle.

Durability: every commit writes a temporary file in the same directory, fsyncs it, hard-links the current file
to ``edge-face.db.bak`` (the previous generation), ``os.replace``s the new file over the old name and fsyncs the
directory. A SIGKILL or power cut at any moment leaves the last committed revision (or the one before) in place.

Concurrency (design decision): the daemon and its web page run for months while an administrator may use the
CLI, and CLI changes must take effect without a restart. So no process holds the database open for writing;
the exclusive lock (``fcntl.flock`` on ``edge-face.db.lock``) is taken only for one write transaction:
lock -> reload the latest file -> mutate -> durable save -> unlock. A writer that cannot get the lock within
``lock_timeout`` seconds gets ``StoreError("the database is locked by another writer (pid N) ...")``. Readers
call :meth:`Store.refresh` (a ``stat``) to pick up other processes' commits; the daemon does it before each
recognition round, so a user disabled from the CLI is refused at the next frame.

Damage: a file that does not decrypt (wrong key, flipped byte, truncation) is an error that stops the
program and overwrites nothing. If the backup generation still decrypts, the error says so; the daemon can
open with ``allow_backup=True`` to keep the door working from it (read-only, with a loud warning) until an
administrator runs ``edge-face db restore --previous``.

Schema versions: :data:`SCHEMA_VERSION` is the current one; :data:`MIGRATIONS` upgrades older payloads step by
step when they are read (the next commit writes the new version). A file from a newer edge-face is refused.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import struct
import threading
import time
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import bcrypt
import numpy as np

from . import config as _config
from .atomic import FileLock, remove_stale_temporaries, write_durable
from .errors import SettingError, StoreError
from .keys import InvalidToken, KeyRing, load_keyring
from .passwords import is_common

log = logging.getLogger(__name__)

DB_FILE_NAME = "edge-face.db"
MAGIC = b"EFDB"
SCHEMA_VERSION = 2
BCRYPT_ROUNDS = 12
BCRYPT_MAX_BYTES = 72
PASSWORD_MIN_CHARS = 8
ROLES = ("admin", "member")
STATUSES = ("pending", "active", "disabled")
SOURCES = ("upload", "camera", "cli")
EMPTY_GALLERY_DIM = 128  # shape of an empty gallery, so ``matrix @ probe`` still works
SETTING_NAMES = tuple(s.name for s in _config.RUNTIME_SETTINGS)  # derived from the one settings table
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StoreInputError(StoreError):
    """A value given to the store is not acceptable (bad name, duplicate e-mail, short password, ...).
    ``field`` names the input at fault when there is one (a setting's name), for forms to mark it."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


class Template(NamedTuple):
    """One face template: an L2-normalised float32 vector (read-only) made by one model.

    A named tuple rather than a dataclass because a database holds tens of thousands and loading must be fast.
    """

    id: str
    model_id: str
    embedding: np.ndarray
    source: str
    quality: float | None
    created: float
    status: str = "active"              # "pending": waits for an administrator, never compared at the door
    thumbnail: bytes | None = None      # small JPEG of the face, kept while pending so the admin can judge it

    def __repr__(self) -> str:
        return (f"Template(id={self.id!r}, model_id={self.model_id!r}, source={self.source!r}, "
                f"quality={self.quality!r}, created={self.created!r}, status={self.status!r})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return (self.id, self.model_id, self.source, self.quality, self.created) == \
            (other.id, other.model_id, other.source, other.quality, other.created) and \
            np.array_equal(self.embedding, other.embedding)

    def __ne__(self, other) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class User:
    """A person who may open the door (member) and perhaps administer it (admin). Immutable snapshot."""

    id: str
    username: str
    email: str
    display_name: str
    password_hash: bytes = field(repr=False)
    role: str
    status: str
    created: float
    updated: float
    templates: tuple[Template, ...] = ()

    @property
    def name(self) -> str:
        """What to show people: the display name, else the username."""
        return self.display_name or self.username

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)


@dataclass(frozen=True)
class Gallery:
    """Templates of active users made by one model, as one matrix for a single matrix product."""

    model_id: str
    user_ids: list[str]           # one per row of matrix
    matrix: np.ndarray            # float32 (N, D), rows L2-normalised
    names: dict[str, str]         # user id -> name to show
    ignored: int = 0              # templates of active users made with another model

    def __len__(self) -> int:
        return len(self.user_ids)


# ---------------------------------------------------------------- schema migrations

def _migrate_1_to_2(doc: dict) -> dict:
    """Version 1 (pre-release) had no run-time settings and kept each template as a record with its own
    model id, offset and dimension; version 2 has settings and compact template rows with a model table."""
    doc = dict(doc, settings=doc.get("settings", {}), schema=2)
    models: list = []
    index: dict = {}
    users: list = []
    for user in doc["users"]:
        rows = []
        for t in sorted(user["templates"], key=lambda t: t["offset"]):
            key = (t["model_id"], t["dim"])
            if key not in index:
                index[key] = len(models)
                models.append([t["model_id"], t["dim"]])
            rows.append([t["id"], index[key], t["source"], t["quality"], t["created"]])
        users.append(dict(user, templates=rows))
    doc["users"], doc["models"] = users, models
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _migrate_1_to_2}


def migrate(doc: dict) -> dict:
    version = doc.get("schema")
    if not isinstance(version, int) or version < 1:
        raise StoreError("the database has no valid schema version; it was not written by edge-face")
    if version > SCHEMA_VERSION:
        raise StoreError(f"the database uses schema version {version}, newer than this edge-face understands "
                         f"({SCHEMA_VERSION}); upgrade edge-face")
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        log.info("database schema migrated from version %d to %d", version, doc["schema"])
        version = doc["schema"]
    return doc


# ---------------------------------------------------------------- serialisation

def encode_payload(doc: dict, vectors: list[np.ndarray]) -> bytes:
    head = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    blob = np.concatenate(vectors).astype("<f4").tobytes() if vectors else b""
    return MAGIC + struct.pack(">I", len(head)) + head + blob


def decode_payload(data: bytes) -> tuple[dict, np.ndarray]:
    if len(data) < 8 or data[:4] != MAGIC:
        raise StoreError("the database decrypted but is not an edge-face database")
    (n,) = struct.unpack(">I", data[4:8])
    try:
        doc = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StoreError("the database decrypted but its records are malformed") from None
    blob = memoryview(data)[8 + n:]
    if len(blob) % 4:
        raise StoreError("the database decrypted but its template block is malformed")
    return doc, np.frombuffer(blob, dtype="<f4")


class _State:
    """One revision of the database in memory. Copied at the start of a transaction (copy on write)."""

    def __init__(self, revision: int = 0, users: dict | None = None, settings: dict | None = None,
                 invites: list | None = None):
        self.revision = revision
        self.users: dict[str, User] = users or {}
        self.settings: dict = settings or {}
        self.invites: list[dict] = invites or []      # {"hash": sha256 hex of the code, "expires": t, "by": id}
        self._index: tuple[dict, dict] | None = None

    def copy(self) -> "_State":
        return _State(self.revision, dict(self.users), dict(self.settings), [dict(i) for i in self.invites])

    def changed(self) -> None:
        self._index = None

    def added(self, user: User) -> None:
        """Keep the name index current after adding one user (cheap for bulk imports)."""
        if self._index is not None:
            self._index[0][_fold(user.username)] = user.id
            if user.email:
                self._index[1][_fold(user.email)] = user.id

    def index(self) -> tuple[dict, dict]:
        if self._index is None:
            by_name, by_email = {}, {}
            for u in self.users.values():
                by_name[_fold(u.username)] = u.id
                if u.email:
                    by_email[_fold(u.email)] = u.id
            self._index = (by_name, by_email)
        return self._index

    def to_bytes(self) -> bytes:
        # Compact records: a template is [id, model index, source, quality, created]; its vector is the next
        # ``dim`` floats of the blob (dim from the model table), so no offsets are stored.
        vectors: list[np.ndarray] = []
        users: list = []
        models: list = []
        model_index: dict = {}
        for u in self.users.values():
            records = []
            for t in u.templates:
                dim = int(t.embedding.shape[0])
                key = (t.model_id, dim)
                if key not in model_index:
                    model_index[key] = len(models)
                    models.append([t.model_id, dim])
                record = [t.id, model_index[key], t.source, t.quality, t.created]
                if t.status != "active":
                    record += [t.status, base64.b64encode(t.thumbnail or b"").decode("ascii")]
                records.append(record)
                vectors.append(t.embedding)
            users.append({"id": u.id, "username": u.username, "email": u.email, "display_name": u.display_name,
                          "password_hash": u.password_hash.decode("ascii"), "role": u.role, "status": u.status,
                          "created": u.created, "updated": u.updated, "templates": records})
        doc = {"schema": SCHEMA_VERSION, "revision": self.revision, "saved": time.time(),
               "settings": self.settings, "models": models, "users": users}
        if self.invites:
            doc["invites"] = self.invites
        return encode_payload(doc, vectors)

    @classmethod
    def from_bytes(cls, data: bytes) -> "_State":
        doc, blob = decode_payload(data)
        doc = migrate(doc)
        try:
            models = [(str(m), int(dim)) for m, dim in doc["models"]]
            offset, users = 0, {}
            for r in doc["users"]:
                templates = []
                for tid, midx, source, quality, created, *pending in r["templates"]:
                    model_id, dim = models[midx]
                    vec = blob[offset:offset + dim]
                    if vec.shape[0] != dim:
                        raise ValueError("template block too short")
                    offset += dim
                    status, thumbnail = (str(pending[0]), base64.b64decode(pending[1]) or None) if pending \
                        else ("active", None)
                    templates.append(Template(tid, model_id, vec, source, quality, created, status, thumbnail))
                users[r["id"]] = User(id=r["id"], username=r["username"], email=r["email"],
                                      display_name=r["display_name"],
                                      password_hash=r["password_hash"].encode("ascii"), role=r["role"],
                                      status=r["status"], created=r["created"], updated=r["updated"],
                                      templates=tuple(templates))
            if offset != blob.shape[0]:
                raise ValueError("template block has extra data")
            invites = [{"hash": str(i["hash"]), "expires": float(i["expires"]), "by": str(i["by"])}
                       for i in doc.get("invites", [])]
            return cls(int(doc["revision"]), users, dict(doc["settings"]), invites)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            raise StoreError("the database decrypted but its records are malformed") from None


# ---------------------------------------------------------------- validation helpers

def _fold(text: str) -> str:
    """Case-insensitive identity of a name or address."""
    return unicodedata.normalize("NFKC", text).casefold()


def _clean_text(value, what: str, *, max_chars: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise StoreInputError(f"{what} must be text")
    value = unicodedata.normalize("NFC", value.strip())
    if required and not value:
        raise StoreInputError(f"{what} must not be empty")
    if len(value) > max_chars:
        raise StoreInputError(f"{what} is longer than {max_chars} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise StoreInputError(f"{what} must not contain control characters")
    return value


def check_username(value) -> str:
    name = _clean_text(value, "the username", max_chars=64, required=True)
    if "@" in name:
        raise StoreInputError("the username must not contain '@' (that is how e-mail addresses are told apart)")
    return name


def check_email(value) -> str:
    email = _clean_text(value, "the e-mail address", max_chars=254, required=False)
    if email and not _EMAIL_RE.match(email):
        raise StoreInputError(f"{email!r} is not an e-mail address (expected name@example.org)")
    return email


def check_password(password: str) -> bytes:
    """The password as UTF-8 bytes, or StoreInputError (too short, or over bcrypt's 72-byte limit)."""
    if not isinstance(password, str):
        raise StoreInputError("the password must be text")
    if len(password) < PASSWORD_MIN_CHARS:
        raise StoreInputError(f"the password is too short: use at least {PASSWORD_MIN_CHARS} characters")
    raw = password.encode("utf-8")
    if len(raw) > BCRYPT_MAX_BYTES:
        raise StoreInputError(f"the password is too long: at most {BCRYPT_MAX_BYTES} bytes in UTF-8 "
                              f"(this one has {len(raw)}; accented letters and emoji take 2-4 bytes each)")
    if is_common(password):
        raise StoreInputError("the password is one of the most common passwords, the first a stranger would "
                              "try: choose another")
    return raw


def _choice(value, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise StoreInputError(f"{what} must be one of {', '.join(choices)} (got {value!r})")
    return value


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def backup_path_for(db_path: Path) -> Path:
    """Where the previous generation of ``db_path`` is kept (the store and `db restore` must agree)."""
    return db_path.with_name(db_path.name + ".bak")


def lock_path_for(db_path: Path) -> Path:
    """The writers' lock file of ``db_path``."""
    return db_path.with_name(db_path.name + ".lock")


def _file_stamp(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# ---------------------------------------------------------------- the store

class Store:
    """The user database. ``Store.open(cfg)`` for the service and the CLI; ``Store(path, keyring)`` for tests.

    Reading methods use the last loaded revision (call :meth:`refresh` to follow other processes); every
    mutating method runs in its own :meth:`transaction` unless one is already open in this thread.
    """

    def __init__(self, path: str | os.PathLike, keyring: KeyRing, *,
                 defaults: _config.Config | _config.DecisionConfig | None = None,
                 max_unlock_seconds: float | None = None,
                 lock_timeout: float = 5.0, bcrypt_rounds: int = BCRYPT_ROUNDS, allow_backup: bool = False,
                 create: bool = False):
        self.path = Path(path)
        self.backup_path = backup_path_for(self.path)
        self.lock_path = lock_path_for(self.path)
        self.keyring = keyring
        self._defaults: dict = {}
        self._max_unlock = _config.DoorConfig().max_unlock_seconds
        self.set_defaults(defaults or _config.Config())
        if max_unlock_seconds is not None:
            self._max_unlock = max_unlock_seconds
        self._rounds = bcrypt_rounds
        self._lock = FileLock(self.lock_path, timeout=lock_timeout, what="the database")
        self._mutex = threading.RLock()
        self._state = _State()
        self._pending: _State | None = None
        self._tx_owner: int | None = None
        self._stamp: tuple | None = None
        self._unreadable: tuple | None = None  # stamp of a file that did not decrypt: not retried until it changes
        self._dummy_hash: bytes | None = None
        self._reported_models: set[tuple[str, int]] = set()
        self._gallery_cache: dict[str, tuple[_State, Gallery]] = {}
        self.from_backup = False
        if create:
            self._create()
        else:
            self._open(allow_backup)

    # ------------------------------------------------------------ opening

    @classmethod
    def open(cls, cfg, *, keyring: KeyRing | None = None, allow_backup: bool = False,
             lock_timeout: float = 5.0, prompt=None) -> "Store":
        """The database of this configuration; StoreError if it is missing, locked, damaged or the key is wrong."""
        ring = keyring if keyring is not None else load_keyring(cfg, prompt=prompt)
        return cls(cfg.state_dir / DB_FILE_NAME, ring, defaults=cfg,
                   max_unlock_seconds=cfg.door.max_unlock_seconds, lock_timeout=lock_timeout,
                   allow_backup=allow_backup)

    @classmethod
    def create(cls, path: str | os.PathLike, keyring: KeyRing, **options) -> "Store":
        """A new empty database at ``path`` (revision 1); refuses to replace an existing one."""
        return cls(path, keyring, create=True, **options)

    def _create(self) -> None:
        with self._lock:
            if self.path.exists():
                raise StoreError(f"a database already exists at {self.path}; it is never overwritten "
                                 "(use `edge-face db restore` to replace it from a backup)")
            self._state = _State(revision=0)
            self._pending = self._state.copy()
            self._tx_owner = threading.get_ident()
            try:
                self._commit()
            finally:
                self._pending = None
                self._tx_owner = None

    def _read(self, path: Path) -> tuple[_State, tuple]:
        """Decrypt and parse one file. InvalidToken propagates so the caller can tell what failed."""
        with open(path, "rb") as fh:
            stamp = _file_stamp(os.fstat(fh.fileno()))
            token = fh.read()
        data = self.keyring.decrypt(token)
        return _State.from_bytes(data), stamp

    def _open(self, allow_backup: bool) -> None:
        if not self.path.exists():
            if self.backup_path.exists():
                hint = f"; a backup generation exists at {self.backup_path}: run `edge-face db restore --previous`"
            else:
                hint = "; run `edge-face db init` to create one"
            raise StoreError(f"no database at {self.path}{hint}")
        try:
            self._state, self._stamp = self._read(self.path)
            return
        except InvalidToken:
            pass
        except PermissionError:
            raise StoreError(f"cannot read the database {self.path}: permission denied; run edge-face as the "
                             "service user or root") from None
        backup = self._try_backup()
        if backup is None:
            raise StoreError(
                f"the database {self.path} cannot be decrypted with the key from {self._key_description()}: "
                "the key is wrong, or the file is damaged. Nothing was changed. Check store.key_source and the "
                "key, or restore the database from a backup with `edge-face db restore FILE`")
        state, _ = backup
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(state_saved_time(self.backup_path) or 0))
        if not allow_backup:
            raise StoreError(
                f"the database {self.path} is damaged or was tampered with (it does not decrypt, but its backup "
                f"does, so the key is right). Nothing was changed. The previous generation, revision "
                f"{state.revision} from {when}, is intact: run `edge-face db restore --previous` to use it")
        log.error("!!! the database %s is damaged or was tampered with; running READ-ONLY from its backup "
                  "(revision %d from %s). Run `edge-face db restore --previous` to repair it.",
                  self.path, state.revision, when)
        self._state, self._stamp = state, None
        self.from_backup = True

    def _try_backup(self) -> tuple[_State, tuple] | None:
        try:
            return self._read(self.backup_path)
        except (InvalidToken, OSError, StoreError):
            return None

    def _key_description(self) -> str:
        src = self.keyring.source
        return f"{src.description} {src.path}" if src is not None else "the given key ring"

    # ------------------------------------------------------------ reading other processes' commits

    @property
    def revision(self) -> int:
        return self._view().revision

    def refresh(self) -> bool:
        """Re-read the file if another process committed since we last looked; True if the revision changed.

        Cheap when nothing changed (one ``stat``). A damaged file is logged once and the last good revision kept,
        so a running door keeps working; it is read again only when the file or the keys change.
        """
        with self._mutex:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return False
            if _file_stamp(st) == self._stamp:
                return False
            probe = (_file_stamp(st), st.st_ctime_ns)   # ctime: a chown or chmod may make it readable
            try:
                keys_changed = self.keyring.refresh()
                if probe == self._unreadable and not keys_changed:
                    return False
                state, stamp = self._read(self.path)
            except (InvalidToken, StoreError, OSError) as exc:
                self._unreadable = probe
                log.error("cannot re-read the database %s (%s); keeping revision %d in memory",
                          self.path, type(exc).__name__, self._state.revision)
                return False
            self._unreadable = None
            changed = state.revision != self._state.revision
            self._state, self._stamp = state, stamp
            if self.from_backup:
                log.warning("the database %s is readable again; leaving backup mode", self.path)
                self.from_backup = False
            return changed

    # ------------------------------------------------------------ writing

    def _view(self) -> _State:
        if self._pending is not None and self._tx_owner == threading.get_ident():
            return self._pending
        return self._state

    def _tx(self) -> _State:
        if self._pending is None or self._tx_owner != threading.get_ident():
            raise RuntimeError("store mutation outside a transaction")
        return self._pending

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """Lock, reload the latest revision, let the caller mutate, save atomically on success.

        An exception inside the block discards every change. Nested transactions join the outer one.
        """
        if self.from_backup:
            raise StoreError(f"the database {self.path} is damaged and edge-face is running from its backup, "
                             "read-only; run `edge-face db restore --previous` first")
        with self._mutex:
            if self._pending is not None:
                yield self
                return
            with self._lock:
                self._reload_for_write()
                self._pending = self._state.copy()
                self._tx_owner = threading.get_ident()
                self._dirty = False
                try:
                    yield self
                    if self._dirty:
                        self._commit()
                finally:
                    self._pending = None
                    self._tx_owner = None

    def _reload_for_write(self) -> None:
        self.keyring.refresh()
        remove_stale_temporaries(self.path)  # a killed writer's half-written file; we hold the lock
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"the database {self.path} has disappeared; restore it with "
                             "`edge-face db restore`") from None
        if _file_stamp(st) == self._stamp:
            return
        try:
            self._state, self._stamp = self._read(self.path)
        except InvalidToken:
            raise StoreError(f"the database {self.path} no longer decrypts (damaged, or the key changed); "
                             "nothing was written. Run `edge-face db restore --previous` or restore a "
                             "backup") from None

    def _commit(self) -> None:
        pending = self._tx()
        pending.revision += 1
        token = self.keyring.encrypt(pending.to_bytes())
        write_durable(self.path, token, keep_previous=self.backup_path)
        self._stamp = _file_stamp(os.stat(self.path))
        self._state = pending

    def _touch(self) -> _State:
        """The pending state, marked for saving. Callers that change names call ``state.changed()``."""
        state = self._tx()
        self._dirty = True
        return state

    def reencrypt(self) -> None:
        """Rewrite the database and its backup under the key ring's newest key (key rotation)."""
        with self._mutex, self._lock:
            self._reload_for_write()
            try:  # the backup is re-encrypted as it is, byte for byte, like the database itself
                write_durable(self.backup_path, self.keyring.rotate(self.backup_path.read_bytes()))
            except (FileNotFoundError, InvalidToken):
                pass  # no backup, or one no key of ours opens: nothing to carry over
            with open(self.path, "rb") as fh:
                token = fh.read()
            write_durable(self.path, self.keyring.rotate(token))
            self._stamp = _file_stamp(os.stat(self.path))

    def close(self) -> None:
        self._lock.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, revision={self._state.revision}, users={len(self._state.users)})"

    # ------------------------------------------------------------ users

    def users(self) -> list[User]:
        return sorted(self._view().users.values(), key=lambda u: _fold(u.username))

    def get_user(self, user_id: str) -> User | None:
        return self._view().users.get(user_id)

    def find_user(self, username_or_email: str) -> User | None:
        """By username or e-mail address, case-insensitively."""
        if not isinstance(username_or_email, str):
            return None
        key = _fold(username_or_email.strip())
        by_name, by_email = self._view().index()
        uid = by_email.get(key) if "@" in key else by_name.get(key)
        return self._view().users.get(uid) if uid else None

    def user(self, ref: str) -> User:
        """By id, username or e-mail; StoreInputError naming ``ref`` if there is no such user."""
        found = self.get_user(ref) or self.find_user(ref)
        if found is None:
            raise StoreInputError(f"there is no user {ref!r} (see `edge-face user list`)")
        return found

    def _require(self, state: _State, user_id: str) -> User:
        try:
            return state.users[user_id]
        except KeyError:
            raise StoreInputError(f"there is no user with id {user_id!r}") from None

    def _check_unique(self, state: _State, username: str, email: str, exclude: str | None) -> None:
        by_name, by_email = state.index()
        other = by_name.get(_fold(username))
        if other and other != exclude:
            raise StoreInputError(f"the username {username!r} is already taken (names are compared without case)")
        if email:
            other = by_email.get(_fold(email))
            if other and other != exclude:
                raise StoreInputError(f"the e-mail address {email!r} already belongs to another user")

    def _hash(self, password: str | None) -> bytes:
        if password is None:
            return b""
        return bcrypt.hashpw(check_password(password), bcrypt.gensalt(self._rounds))

    def add_user(self, *, username: str, email: str | None = None, password: str | None = None,
                 display_name: str = "", role: str = "member", status: str = "pending") -> User:
        """A new user. ``password=None`` means no admin-page login (door only)."""
        username = check_username(username)
        email = check_email(email)
        display_name = _clean_text(display_name, "the display name", max_chars=100, required=False)
        _choice(role, "the role", ROLES)
        _choice(status, "the status", STATUSES)
        password_hash = self._hash(password)  # slow: outside the lock
        with self.transaction():
            state = self._touch()
            self._check_unique(state, username, email, None)
            now = time.time()
            user = User(id=_new_id(), username=username, email=email, display_name=display_name,
                        password_hash=password_hash, role=role, status=status, created=now, updated=now)
            state.users[user.id] = user
            state.added(user)
        return user

    def update_user(self, user_id: str, **fields) -> User:
        """Change username, email, display_name, role or status (passwords: :meth:`set_password`)."""
        allowed = {"username", "email", "display_name", "role", "status"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise StoreInputError(f"cannot change {unknown[0]!r} here; changeable: {', '.join(sorted(allowed))}")
        clean: dict[str, Any] = {}
        if "username" in fields:
            clean["username"] = check_username(fields["username"])
        if "email" in fields:
            clean["email"] = check_email(fields["email"])
        if "display_name" in fields:
            clean["display_name"] = _clean_text(fields["display_name"], "the display name", max_chars=100,
                                                required=False)
        if "role" in fields:
            clean["role"] = _choice(fields["role"], "the role", ROLES)
        if "status" in fields:
            clean["status"] = _choice(fields["status"], "the status", STATUSES)
        with self.transaction():
            state = self._touch()
            user = self._require(state, user_id)
            self._check_unique(state, clean.get("username", user.username), clean.get("email", user.email),
                               user.id)
            user = dataclasses.replace(user, **clean, updated=time.time())
            before = _active_admins(state)
            state.users[user.id] = user
            _keep_an_admin(before, state, user)
            state.changed()
        return user

    def set_password(self, user_id: str, password: str | None) -> User:
        password_hash = self._hash(password)
        with self.transaction():
            state = self._touch()
            user = dataclasses.replace(self._require(state, user_id), password_hash=password_hash,
                                       updated=time.time())
            state.users[user.id] = user
        return user

    def remove_user(self, user_id: str) -> User:
        with self.transaction():
            state = self._touch()
            user = self._require(state, user_id)
            before = _active_admins(state)
            del state.users[user_id]
            _keep_an_admin(before, state, user)
            state.changed()
        return user

    # ------------------------------------------------------------ business rules (web and CLI alike)

    def create_invite(self, admin_id: str, *, days: float = 7.0) -> str:
        """A single-use invitation code for the sign-up page; only its hash is stored."""
        code = secrets.token_urlsafe(12)
        with self.transaction():
            state = self._touch()
            self._require(state, admin_id)
            now = time.time()
            state.invites = [i for i in state.invites if i["expires"] > now] + [
                {"hash": hashlib.sha256(code.encode()).hexdigest(), "expires": now + days * 86400, "by": admin_id}]
        return code

    def sign_up(self, *, username: str, email: str | None, password: str | None, invite: str | None = None,
                require_invite: bool = False, max_pending: int | None = None) -> User:
        """A new account from the sign-up page: the first account of a door becomes its active administrator,
        later ones wait as pending members. Decided inside the write transaction (file lock), so two "first"
        sign-ups at the same moment, from any processes, cannot both become administrator. Later ones may need
        an unused, unexpired invitation code (consumed here) and are refused while ``max_pending`` accounts wait.
        """
        password_hash = self._hash(password)          # slow: outside the lock
        with self.transaction():
            first = not self._tx().users
            if not first and max_pending is not None and \
                    sum(u.status == "pending" for u in self._tx().users.values()) >= max_pending:
                raise StoreInputError("sign-ups are paused because many accounts already wait for approval; "
                                      "ask an administrator")
            if not first and require_invite:
                digest = hashlib.sha256((invite or "").strip().encode()).hexdigest()
                now = time.time()
                valid = [i for i in self._tx().invites if i["expires"] > now
                         and secrets.compare_digest(i["hash"], digest)]
                if not valid:
                    raise StoreInputError("the invitation code is not valid (mistyped, already used or expired); "
                                          "ask an administrator for a new one")
                self._touch().invites = [i for i in self._tx().invites if i is not valid[0]
                                         and i["hash"] != digest]
            user = self.add_user(username=username, email=email, password=None,
                                 role="admin" if first else "member", status="active" if first else "pending")
            state = self._touch()
            user = dataclasses.replace(user, password_hash=password_hash)
            state.users[user.id] = user
        return user

    def set_role(self, user_id: str, role: str) -> User:
        """Make a user ``admin`` (which also activates them) or ``member``; the last active administrator
        cannot be demoted (StoreInputError)."""
        role = _choice(role, "the role", ROLES)
        with self.transaction():
            user = self._require(self._tx(), user_id)
            fields = {"role": role}
            if role == "admin" and user.status != "active":
                fields["status"] = "active"
            return self.update_user(user_id, **fields)

    def check_password(self, username_or_email: str, password: str) -> User | None:
        """The user if the password is right and the account is not disabled, else None.

        Does one bcrypt check whatever happens, so an attacker cannot tell unknown names by the response time.
        """
        user = self.find_user(username_or_email) if isinstance(username_or_email, str) else None
        try:
            raw = password.encode("utf-8") if isinstance(password, str) else b""
        except UnicodeEncodeError:
            raw = b""
        acceptable = 0 < len(raw) <= BCRYPT_MAX_BYTES
        target = user.password_hash if user is not None and user.password_hash else self._dummy()
        matched = bcrypt.checkpw(raw if acceptable else b"not a password", target)
        if matched and acceptable and user is not None and user.password_hash and user.status != "disabled":
            return user
        return None

    def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            self._dummy_hash = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(self._rounds))
        return self._dummy_hash

    # ------------------------------------------------------------ templates

    def add_template(self, user_id: str, embedding, *, model_id: str, source: str = "upload",
                     quality: float | None = None, pending: bool = False,
                     thumbnail: bytes | None = None) -> Template:
        """Store a template; ``pending`` ones wait for :meth:`approve_template` and are never compared."""
        vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vec.size < 16 or vec.size > 4096:
            raise StoreInputError(f"a face template must have 16 to 4096 values (got {vec.size})")
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(vec).all() or norm == 0.0:
            raise StoreInputError("a face template must be finite and not all zero")
        if not isinstance(model_id, str) or not model_id:
            raise StoreInputError("a face template needs the id of the model that made it")
        _choice(source, "the template source", SOURCES)
        if quality is not None:
            quality = float(quality)
            if not np.isfinite(quality):
                raise StoreInputError("the template quality must be a finite number")
        vec = (vec / norm).astype(np.float32)
        vec.setflags(write=False)
        with self.transaction():
            state = self._touch()
            user = self._require(state, user_id)
            template = Template(id=_new_id(), model_id=model_id, embedding=vec, source=source, quality=quality,
                                created=time.time(), status="pending" if pending else "active",
                                thumbnail=bytes(thumbnail) if pending and thumbnail else None)
            state.users[user_id] = dataclasses.replace(user, templates=user.templates + (template,),
                                                       updated=time.time())
        return template

    def remove_template(self, template_id: str) -> Template:
        with self.transaction():
            state = self._touch()
            for user in state.users.values():
                for t in user.templates:
                    if t.id == template_id:
                        state.users[user.id] = dataclasses.replace(
                            user, templates=tuple(x for x in user.templates if x.id != template_id),
                            updated=time.time())
                        return t
            raise StoreInputError(f"there is no face template with id {template_id!r}")

    def approve_template(self, template_id: str) -> Template:
        """A pending template becomes active (compared at the door); its thumbnail is dropped."""
        with self.transaction():
            state = self._touch()
            for user in state.users.values():
                for t in user.templates:
                    if t.id == template_id:
                        approved = t._replace(status="active", thumbnail=None)
                        state.users[user.id] = dataclasses.replace(
                            user, templates=tuple(approved if x.id == template_id else x for x in user.templates),
                            updated=time.time())
                        return approved
            raise StoreInputError(f"there is no face template with id {template_id!r}")

    def pending_templates(self) -> list[tuple[User, Template]]:
        """Templates waiting for an administrator, oldest first."""
        found = [(u, t) for u in self.users() for t in u.templates if t.status == "pending"]
        return sorted(found, key=lambda pair: pair[1].created)

    def stale_templates(self, model_id: str) -> list[tuple[User, Template]]:
        """Templates made with another model than ``model_id``: never compared; re-enrol these users."""
        return [(u, t) for u in self.users() for t in u.templates if t.model_id != model_id]

    def gallery(self, model_id: str) -> Gallery:
        """The active users' templates for ``model_id``; templates of other models are reported and ignored."""
        state = self._view()
        cached = self._gallery_cache.get(model_id)
        if cached is not None and cached[0] is state:
            return cached[1]
        user_ids, vectors, names, ignored, ignored_users = [], [], {}, 0, set()
        for user in state.users.values():
            if user.status != "active":
                continue
            for t in user.templates:
                if t.status != "active":
                    continue            # waiting for an administrator: never compared at the door
                if t.model_id != model_id:
                    ignored += 1
                    ignored_users.add(user.id)
                    continue
                user_ids.append(user.id)
                vectors.append(t.embedding)
            names[user.id] = user.name
        dim = vectors[0].shape[0] if vectors else 0
        if vectors and any(v.shape[0] != dim for v in vectors):
            raise StoreError(f"templates for model {model_id} have different sizes; the database is inconsistent")
        matrix = np.stack(vectors).astype(np.float32, copy=False) if vectors else np.zeros((0, EMPTY_GALLERY_DIM), np.float32)
        if ignored and (model_id, ignored) not in self._reported_models:
            self._reported_models.add((model_id, ignored))
            log.warning("%d face templates of %d active users were made with another model than %s; they are "
                        "ignored until those users are enrolled again", ignored, len(ignored_users), model_id)
        gallery = Gallery(model_id=model_id, user_ids=user_ids, matrix=matrix, names=names, ignored=ignored)
        self._gallery_cache[model_id] = (state, gallery)
        return gallery

    # ------------------------------------------------------------ run-time settings

    def set_defaults(self, defaults: _config.Config | _config.DecisionConfig) -> None:
        """New configuration defaults (start, SIGHUP); values an administrator saved still win. A whole
        configuration also brings the door's maximum unlock time, which bounds ``unlock_seconds``."""
        if isinstance(defaults, _config.DecisionConfig):
            defaults = _config.Config(decision=defaults)
        else:
            self._max_unlock = defaults.door.max_unlock_seconds
        self._defaults = _config.runtime_defaults(defaults)

    def settings_with_defaults(self, defaults: _config.Config) -> dict:
        """The settings as they would be under other configuration defaults (checked before a SIGHUP applies)."""
        values = _config.runtime_defaults(defaults)
        values.update(self._view().settings)
        return values

    @property
    def settings(self) -> dict:
        """The effective settings: values saved by an administrator over the configuration's defaults."""
        values = dict(self._defaults)
        values.update(self._view().settings)
        return values

    def update_settings(self, **values) -> dict:
        """Validate and save; StoreInputError with ``field`` naming the setting if a value is not allowed."""
        unknown = sorted(set(values) - set(SETTING_NAMES))
        if unknown:
            raise StoreInputError(f"{unknown[0]}: unknown setting; known settings: {', '.join(SETTING_NAMES)}",
                                  field=unknown[0])
        try:
            clean = {name: _config.setting(name).check(value, key=name) for name, value in values.items()}
            with self.transaction():
                _config.check_runtime(dict(self.settings, **clean), max_unlock_seconds=self._max_unlock)
                state = self._touch()
                state.settings.update(clean)
        except SettingError as exc:
            raise StoreInputError(str(exc), field=exc.field) from None
        return self.settings


def _active_admins(state: _State) -> int:
    return sum(1 for u in state.users.values() if u.role == "admin" and u.status == "active")


def _keep_an_admin(before: int, state: _State, user: User) -> None:
    """The rule "at least one active administrator", checked inside the write transaction: a change that would
    take the last one away is refused (two admins demoting each other at once: the second fails)."""
    if before > 0 and _active_admins(state) == 0:
        raise StoreInputError(f"{user.username} is the last active administrator; make someone else admin "
                              "first")


def state_saved_time(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def read_verified(path: str | os.PathLike, keyring: KeyRing) -> tuple[bytes, int]:
    """The raw (still encrypted) bytes of a database file and the revision they hold.

    One read: what a backup or restore writes is exactly what was checked. StoreError if the file cannot be read
    or does not decrypt with ``keyring``.
    """
    path = Path(path)
    try:
        token = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path}: file not found") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = keyring.decrypt(token)
    except InvalidToken:
        raise StoreError(f"{path} does not decrypt with the current key: it is damaged, not an edge-face "
                         "database, or was made before a key rotation") from None
    return token, _State.from_bytes(data).revision
