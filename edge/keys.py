"""Fernet keys for the database and the access log, from a key file, a systemd credential or a passphrase.

Three sources (``store.key_source``):

* ``file``: ``store.key_file`` (default ``<state_dir>/db.key``), created by ``edge-face db init`` with mode 0600
  and ``O_CREAT|O_EXCL`` so an existing key is never overwritten. One key per line, newest first.
* ``credential``: ``$CREDENTIALS_DIRECTORY/<store.credential_name>`` (systemd ``LoadCredentialEncrypted=``),
  same format; read-only here, so it cannot be rotated by ``edge-face keys rotate``.
* ``passphrase``: a key derived with PBKDF2-HMAC-SHA256 (600,000 iterations) from the passphrase in
  ``store.passphrase_file`` (or typed at a prompt) and a random salt stored in ``<state_dir>/db.salt``, one salt
  per line, newest first.

Every source can list several entries (keys or salts), newest first: the newest encrypts, all of them decrypt.
That is what makes ``edge-face keys rotate`` safe to interrupt: the new entry is added in front, everything is
re-encrypted, and only then are the old entries dropped (see :mod:`edge.keyrotation`).

A :class:`KeyRing` re-reads its source when the file changes (a cheap ``stat``), so a daemon that runs for months
follows a rotation done by the CLI. Keys never appear in logs, error messages, ``repr()`` or the environment.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .atomic import create_exclusive, write_durable
from .errors import StoreError

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 600_000
PBKDF2_PREFIX = "pbkdf2-sha256"
SALT_FILE_NAME = "db.salt"

__all__ = ["KeyRing", "KeySource", "FileKeySource", "CredentialKeySource", "PassphraseKeySource",
           "key_source_for", "load_keyring", "init_keys", "InvalidToken"]


class KeySource:
    """Where key entries live. Subclasses turn an entry (a line of the file) into a Fernet key."""

    description = "key"
    rotatable = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def stamp(self) -> tuple | None:
        """Changes whenever the file is replaced (rotation) or rewritten."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def read_entries(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise StoreError(self.missing_message()) from None
        except PermissionError:
            raise StoreError(f"cannot read the {self.description} file {self.path}: permission denied; "
                             "run edge-face as the service user or root") from None
        except UnicodeDecodeError:
            raise StoreError(f"the {self.description} file {self.path} is damaged (not plain text); "
                             "restore it from your key backup") from None
        entries = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not entries:
            raise StoreError(f"the {self.description} file {self.path} is empty; restore it from your key backup")
        return entries

    def write_entries(self, entries: list[str]) -> None:
        """Atomically replace the file (rotation only)."""
        write_durable(self.path, ("\n".join(entries) + "\n").encode("ascii"))

    def create(self) -> None:
        """Create the file with one new entry; never overwrites."""
        try:
            create_exclusive(self.path, (self.new_entry() + "\n").encode("ascii"))
        except FileExistsError:
            raise StoreError(f"the {self.description} file {self.path} already exists; it is never overwritten "
                             "(delete it yourself only if no database uses it)") from None
        log.info("created %s file %s (mode 0600)", self.description, self.path)

    def new_entry(self) -> str:
        raise NotImplementedError

    def entry_to_key(self, entry: str, line: int) -> bytes:
        raise NotImplementedError

    def missing_message(self) -> str:
        return (f"the key file {self.path} does not exist; run `edge-face db init` for a new database, "
                "or put back the key file from your backup")

    def keys(self) -> list[bytes]:
        return [self.entry_to_key(e, i + 1) for i, e in enumerate(self.read_entries())]


def _check_fernet_key(entry: str, where: str) -> bytes:
    key = entry.encode("ascii")
    try:
        Fernet(key)
    except (ValueError, binascii.Error):
        # Never echo the line: it may be a real key with one character wrong.
        raise StoreError(f"{where} is not a Fernet key (32 url-safe base64 bytes); restore the key from your "
                         "backup") from None
    return key


class FileKeySource(KeySource):
    """A key file made by ``edge-face db init``."""

    def new_entry(self) -> str:
        return Fernet.generate_key().decode("ascii")

    def entry_to_key(self, entry: str, line: int) -> bytes:
        return _check_fernet_key(entry, f"line {line} of the key file {self.path}")


class CredentialKeySource(FileKeySource):
    """A key delivered by systemd in ``$CREDENTIALS_DIRECTORY``; read-only for us."""

    description = "credential"
    rotatable = False

    def write_entries(self, entries: list[str]) -> None:
        raise StoreError("keys from a systemd credential cannot be rotated by edge-face: make a new credential "
                         "with systemd-creds, or switch to store.key_source = file")

    def create(self) -> None:
        if not self.path.is_file():
            raise StoreError(self.missing_message())

    def missing_message(self) -> str:
        return (f"the systemd credential {self.path} is not available; check LoadCredential=/"
                "LoadCredentialEncrypted= in the unit and store.credential_name")


class PassphraseKeySource(KeySource):
    """Keys derived from one passphrase and the salts in ``db.salt`` (one per line, newest first)."""

    description = "salt"

    def __init__(self, path: str | os.PathLike, passphrase: Callable[[], str]):
        super().__init__(path)
        self._passphrase_fn = passphrase
        self._passphrase: str | None = None
        self._derived: dict[str, bytes] = {}

    def _secret(self) -> bytes:
        if self._passphrase is None:
            value = self._passphrase_fn()
            if not value:
                raise StoreError("the passphrase is empty; put it in store.passphrase_file or type it at the prompt")
            self._passphrase = value
        return self._passphrase.encode("utf-8")

    def new_entry(self) -> str:
        salt = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii")
        return f"{PBKDF2_PREFIX}${PBKDF2_ITERATIONS}${salt}"

    def entry_to_key(self, entry: str, line: int) -> bytes:
        if entry in self._derived:
            return self._derived[entry]
        parts = entry.split("$")
        try:
            if len(parts) != 3 or parts[0] != PBKDF2_PREFIX:
                raise ValueError
            iterations = int(parts[1])
            salt = base64.urlsafe_b64decode(parts[2].encode("ascii"))
            if iterations < PBKDF2_ITERATIONS or len(salt) < 16:
                raise ValueError
        except (ValueError, binascii.Error):
            raise StoreError(f"line {line} of the salt file {self.path} is not a valid "
                             f"{PBKDF2_PREFIX} salt with at least {PBKDF2_ITERATIONS} iterations") from None
        raw = hashlib.pbkdf2_hmac("sha256", self._secret(), salt, iterations, dklen=32)
        key = base64.urlsafe_b64encode(raw)
        self._derived[entry] = key
        return key

    def missing_message(self) -> str:
        return (f"the salt file {self.path} does not exist; run `edge-face db init` for a new database, "
                "or put back the salt file from your backup")


class KeyRing:
    """The Fernet keys of one source, newest first; encrypts with the newest, decrypts with any.

    ``refresh()`` re-reads the source when its file changed, which is how a long-running daemon follows a key
    rotation made by another process. Call it while holding the data's write lock.
    """

    def __init__(self, source: KeySource | None = None, *, keys: list[bytes] | None = None):
        if (source is None) == (keys is None):
            raise ValueError("give either a source or explicit keys")
        self.source = source
        self._stamp: tuple | None = None
        self._fernet: MultiFernet | None = None
        self._count = 0
        if keys is not None:
            self._set([_check_fernet_key(k.decode("ascii") if isinstance(k, bytes) else k, f"key {i + 1}")
                       for i, k in enumerate(keys)])
        else:
            self.refresh()

    @classmethod
    def generate(cls) -> "KeyRing":
        """A ring with one fresh random key (tests, throwaway stores)."""
        return cls(keys=[Fernet.generate_key()])

    def _set(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._count = len(keys)

    def refresh(self) -> bool:
        """Re-read the source if its file changed; True if the keys were reloaded."""
        if self.source is None:
            return False
        stamp = self.source.stamp()
        if stamp is not None and stamp == self._stamp:
            return False
        self._set(self.source.keys())
        self._stamp = stamp
        if self._count > 1:
            log.info("key ring has %d keys (a rotation is in progress or was interrupted)", self._count)
        return True

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        where = repr(self.source) if self.source is not None else "explicit"
        return f"KeyRing(source={where}, keys={self._count})"

    def _ring(self) -> MultiFernet:
        if self._fernet is None:
            raise StoreError("no key is loaded")
        return self._fernet

    def encrypt(self, data: bytes) -> bytes:
        return self._ring().encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """Raises ``cryptography.fernet.InvalidToken`` (wrong key or damaged data)."""
        return self._ring().decrypt(token)

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt ``token`` under the newest key."""
        return self._ring().rotate(token)


def _read_passphrase_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreError(f"the passphrase file {path} (store.passphrase_file) does not exist") from None
    except PermissionError:
        raise StoreError(f"cannot read the passphrase file {path}: permission denied") from None
    return text.rstrip("\r\n")


def key_source_for(cfg, *, prompt: Callable[[str], str] | None = None) -> KeySource:
    """The key source the configuration names. ``prompt`` asks for a passphrase when no file is configured."""
    kind = cfg.store.key_source
    if kind == "file":
        return FileKeySource(cfg.key_file)
    if kind == "credential":
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise StoreError("store.key_source = credential but $CREDENTIALS_DIRECTORY is not set: run under "
                             "systemd with LoadCredential= or LoadCredentialEncrypted=")
        return CredentialKeySource(Path(directory) / cfg.store.credential_name)
    if kind == "passphrase":
        if cfg.store.passphrase_file:
            path = Path(cfg.store.passphrase_file)
            get = lambda: _read_passphrase_file(path)  # noqa: E731
        elif prompt is not None:
            get = lambda: prompt("Database passphrase: ")  # noqa: E731
        else:
            raise StoreError("store.key_source = passphrase needs store.passphrase_file when there is no "
                             "terminal to type the passphrase")
        return PassphraseKeySource(cfg.state_dir / SALT_FILE_NAME, get)
    raise StoreError(f"store.key_source: unknown source {kind!r}")


def interactive_prompt() -> Callable[[str], str] | None:
    """getpass when a terminal is attached, else None."""
    try:
        if os.isatty(0):
            return getpass.getpass
    except OSError:
        pass
    return None


def load_keyring(cfg, *, prompt: Callable[[str], str] | None = None) -> KeyRing:
    """The key ring for an existing database."""
    return KeyRing(key_source_for(cfg, prompt=prompt))


def init_keys(cfg, *, prompt: Callable[[str], str] | None = None) -> tuple[KeyRing, bool]:
    """The key ring for a new database and whether its key was created now.

    A new key (or salt) file is created with O_CREAT|O_EXCL and mode 0600; an existing one (made by the
    installer, or put back from a backup) is used as it is and never overwritten.
    """
    source = key_source_for(cfg, prompt=prompt)
    if source.path.exists():
        return KeyRing(source), False
    source.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source.create()
    return KeyRing(source), True
