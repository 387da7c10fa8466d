"""The encrypted, append-only access log: who came to the door, what was decided, what the hardware did.

One event per line, each line a Fernet token (same key ring as the database), in ``<state_dir>/access.log``.
Each append takes an exclusive ``flock`` on ``access.log.lock`` (the daemon and the CLI both append), opens the
file with ``O_APPEND``, writes the whole line with one ``write`` and fsyncs. A crash during an append can only
tear that one line; earlier lines are never touched. A torn last line is reported and skipped when reading,
and the next append starts on a fresh line so it cannot glue itself to the fragment.

Rotation by size: when the current file would pass ``max_bytes`` it becomes ``access.log.1`` (the older ones
shift up) and at most ``keep`` rotated files are kept besides the current one.

A full disk: with ``pending_limit`` (the daemon's log) an event that cannot be written waits in memory, at most
``pending_limit`` of them (the oldest give way and are counted), and is written with its original time before the
next event once space returns (or by :meth:`AccessLog.flush_pending`); :meth:`events` includes the waiting ones.
Without it (the CLI) a full disk is a :class:`~edge.errors.DiskFullError`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import os
import re
import threading
import time
import unicodedata
from collections import deque
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from .atomic import PRIVATE_MODE, FileLock, fsync_dir, write_all, write_durable
from .diskspace import disk_full_error, is_disk_full
from .errors import StoreError
from .keys import InvalidToken, KeyRing, load_keyring

log = logging.getLogger(__name__)

LOG_FILE_NAME = "access.log"
EVENT_KINDS = ("grant", "deny", "unknown", "spoof", "exit_button", "door_opened", "door_closed", "door_held_open",
               "camera_failure", "camera_recovered", "lockout", "remote_unlock", "login_failed", "enrol",
               "user_changed", "settings_changed", "service_start", "service_stop")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Events hold text typed by strangers (a username at the login page): a spreadsheet must not run it as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# Control, format (the bidirectional overrides U+202A-202E and U+2066-2069 among them) and line/paragraph
# separators: a typed username holding them can fake a line or reverse how the rest of a row reads.
_INVISIBLE = frozenset(("Cc", "Cf", "Zl", "Zp"))


def printable(text: str) -> str:
    """``text`` without control, format and bidirectional-override characters."""
    if text.isprintable():
        return text
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE)


def safe_cell(value) -> object:
    """A CSV cell for an event value: invisible characters removed, and text a spreadsheet would run as a formula
    gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = printable(str(value))
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


CSV_COLUMNS = ("time", "kind", "user", "similarity", "decision", "source", "details")


def write_csv(events: Iterable[dict], out: IO[str]) -> None:
    """The one CSV export of the access log (``edge-face log --csv`` and the admin page's log.csv): local ISO
    time with its offset, the common fields, and every other field as JSON in ``details``; text cells that a
    spreadsheet would run as a formula are quoted (:func:`safe_cell`)."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        extra = {k: v for k, v in e.items() if k not in CSV_COLUMNS[:-1]}
        when = e.get("time")
        stamp = (_dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
                 if isinstance(when, (int, float)) else when)
        row = [stamp, e.get("kind"), e.get("user"), e.get("similarity"), e.get("decision"), e.get("source"),
               json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None]
        writer.writerow([safe_cell(v) for v in row])


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the access log")


def _timestamp(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    return float(value)


class AccessLog:
    """Append events and read them back. ``AccessLog.open(cfg)`` or ``AccessLog(path, keyring)``."""

    def __init__(self, path: str | os.PathLike, keyring: KeyRing, *, max_bytes: int = 1_048_576, keep: int = 5,
                 lock_timeout: float = 10.0, pending_limit: int = 0):
        self.path = Path(path)
        self.keyring = keyring
        self.max_bytes = int(max_bytes)
        self.keep = int(keep)
        self.pending_limit = int(pending_limit)
        self._pending: deque[dict] = deque()
        self._pending_lock = threading.Lock()
        self.dropped = 0          # events given up because more than pending_limit waited for space
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"), timeout=lock_timeout,
                              what="the access log")
        self.skipped = 0  # unreadable lines met by the last events() iteration

    @classmethod
    def open(cls, cfg, *, keyring: KeyRing | None = None, prompt=None, pending_limit: int = 0) -> "AccessLog":
        ring = keyring if keyring is not None else load_keyring(cfg, prompt=prompt)
        return cls(cfg.state_dir / LOG_FILE_NAME, ring, max_bytes=cfg.store.log_max_bytes, keep=cfg.store.log_keep,
                   pending_limit=pending_limit)

    def __repr__(self) -> str:
        return f"AccessLog({str(self.path)!r})"

    def close(self) -> None:
        if self._pending:
            self.flush_pending()
        if self._pending:
            log.error("access log: %d events could not be written (the disk is full) and are lost",
                      len(self._pending))
        self._lock.close()

    def __enter__(self) -> "AccessLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ writing

    def append(self, kind: str, user: str | None = None, similarity: float | None = None,
               decision: str | None = None, source: str | None = None, **details) -> dict:
        """Write one event durably and return it. ``details`` must be JSON-serialisable."""
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise StoreError(f"access log event kind {kind!r} is not valid (lower-case word, e.g. 'grant')")
        event = {"time": time.time(), "kind": kind, "user": user,
                 "similarity": None if similarity is None else float(similarity),
                 "decision": decision, "source": source}
        event.update(details)
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = printable(value)      # text typed by strangers: no control or bidi characters
        try:
            plain = json.dumps(event, ensure_ascii=False, default=_json_default, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"access log event {kind!r}: {exc}") from None
        with self._pending_lock:
            if self._pending:
                self._pending.append(event)
                self._flush()
            else:
                try:
                    self._write([event])
                except OSError as exc:
                    if not is_disk_full(exc):
                        raise
                    if not self.pending_limit:
                        raise disk_full_error(self.path, f"the {kind!r} event for the access log") from None
                    self._pending.append(event)
                    log.error("access log: the disk is full; events wait in memory (at most %d) and are written "
                              "with their times when space returns", self.pending_limit)
            while len(self._pending) > self.pending_limit:
                self._pending.popleft()
                self.dropped += 1
        return event

    @property
    def pending(self) -> int:
        """Events waiting in memory for disk space."""
        return len(self._pending)

    def flush_pending(self) -> int:
        """Try to write the events waiting for disk space; returns how many still wait."""
        with self._pending_lock:
            if self._pending:
                self._flush()
            return len(self._pending)

    def _flush(self) -> None:
        """Write waiting events oldest first, each removed once it is on disk; stops at the first full-disk error."""
        written = 0
        while self._pending:
            try:
                self._write([self._pending[0]])
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                return
            self._pending.popleft()
            written += 1
        if written:
            lost = f"; {self.dropped} older ones were lost" if self.dropped else ""
            log.warning("access log: space again; wrote %d delayed events with their original times%s",
                        written, lost)
            self.dropped = 0

    def _write(self, events: list[dict]) -> None:
        with self._lock:
            self.keyring.refresh()
            for event in events:
                plain = json.dumps(event, ensure_ascii=False, default=_json_default, separators=(",", ":"))
                line = self.keyring.encrypt(plain.encode("utf-8")) + b"\n"
                self._rotate_if_needed(len(line))
                created = not self.path.exists()
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
                try:
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        line = b"\n" + line  # a torn line from a crash or a full disk: do not glue this event to it
                    write_all(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if created:
                    fsync_dir(self.path.parent)

    def _rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate_if_needed(self, incoming: int) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        for n in range(self.keep, 0, -1):
            older = self._rotated(n)
            if n == self.keep:
                older.unlink(missing_ok=True)
                continue
            if older.exists():
                os.replace(older, self._rotated(n + 1))
        os.replace(self.path, self._rotated(1))
        for extra in self._numbered():
            if extra[0] > self.keep:
                extra[1].unlink(missing_ok=True)
        fsync_dir(self.path.parent)
        log.info("access log rotated (%d bytes)", size)

    def _numbered(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.path.parent.glob(self.path.name + ".*"):
            suffix = p.name[len(self.path.name) + 1:]
            if suffix.isdigit():
                found.append((int(suffix), p))
        return sorted(found)

    def files(self) -> list[Path]:
        """The log files, oldest first."""
        files = [p for _, p in reversed(self._numbered())]
        if self.path.exists():
            files.append(self.path)
        return files

    # ------------------------------------------------------------ reading

    def events(self, since=None, user: str | None = None, kind: str | None = None, *,
               newest_first: bool = False) -> Iterator[dict]:
        """Events oldest first (or ``newest_first``, so that "the last few" stops early instead of decrypting
        every file). ``since``: epoch seconds or datetime; ``user``: name, case-insensitive.

        Unreadable lines (a torn last line after a crash, a damaged line) are logged, counted in
        :attr:`skipped` and skipped.
        """
        self.keyring.refresh()
        since_ts = _timestamp(since)
        wanted_user = user.casefold() if user else None

        def wanted(event: dict) -> bool:
            return not ((since_ts is not None and event.get("time", 0) < since_ts)
                        or (wanted_user is not None and (event.get("user") or "").casefold() != wanted_user)
                        or (kind is not None and event.get("kind") != kind))

        waiting = [json.loads(json.dumps(e, default=_json_default)) for e in list(self._pending)]
        if newest_first:
            yield from (e for e in reversed(waiting) if wanted(e))
        yield from (e for e in self._stored_events(newest_first) if wanted(e))
        if not newest_first:
            yield from (e for e in waiting if wanted(e))

    def _stored_events(self, newest_first: bool) -> Iterator[dict]:
        self.skipped = 0
        files = self.files()
        for path in reversed(files) if newest_first else files:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # rotated away while we were reading
            lines = data.split(b"\n")
            torn = lines.pop()  # b"" when the file ends with a newline
            if torn:
                self.skipped += 1
                log.warning("%s: the last line is incomplete (a crash during an append?); skipped it", path)
            numbered = list(enumerate(lines, 1))
            for number, line in reversed(numbered) if newest_first else numbered:
                if not line:
                    continue
                try:
                    yield json.loads(self.keyring.decrypt(line).decode("utf-8"))
                except (InvalidToken, ValueError, UnicodeDecodeError):
                    self.skipped += 1
                    log.warning("%s: line %d cannot be decrypted (damaged, torn or another key); skipped it",
                                path, number)

    # ------------------------------------------------------------ key rotation

    def reencrypt(self) -> int:
        """Rewrite every log file under the key ring's newest key; returns the number of lines kept as they
        were because they could not be decrypted (torn or damaged lines are preserved, never dropped)."""
        kept = 0
        with self._lock:
            self.keyring.refresh()
            for path in self.files():
                lines = path.read_bytes().split(b"\n")
                tail = lines.pop()
                out = []
                for line in lines:
                    if not line:
                        continue
                    try:
                        out.append(self.keyring.rotate(line))
                    except InvalidToken:
                        out.append(line)
                        kept += 1
                if tail:
                    kept += 1
                body = b"".join(x + b"\n" for x in out) + tail
                write_durable(path, body)
        return kept
