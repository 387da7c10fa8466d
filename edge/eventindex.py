"""A columnar index of the access log, so charts and the log page do not decrypt a year of events per view.

What it holds, per event: time, kind, user (name and id), similarity, the grant's first-frame-to-unlock seconds, and where
the event's line is (file, byte offset, length), so the log page decrypts only the fifty lines it shows.

Why encrypted (design decision): per-user grant rates need names, and a plain list of times and names would say
who comes and goes as clearly as the log itself. So the index is one Fernet token (same key ring as the log)
in ``<state_dir>/access.log.index``, mode 0600, written atomically. It is a *cache*: derived from the log files
present, never the record. It is rebuilt when missing, damaged or under an old key, and it follows the log's
retention (a rotated-away file leaves the index with it).

How it stays current: log files are recognised by inode plus a digest of their first line (a Fernet token has a
random IV, so an inode reused after rotation is told apart). A file that grew is read from where the index
stopped; only the new lines are decrypted. ``refresh()`` is cheap when nothing changed (a ``stat`` per file);
the index is written back when enough new lines were decrypted to be worth saving.

The first build after an upgrade decrypts the whole log (7.2 s for 100,000 events): the service starts it with
``warm()`` in a thread at the lowest CPU priority that hands the interpreter over every few lines, so the
door's thread never waits for it and the first /log or /charts request finds the index built.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .atomic import write_durable
from .errors import DiskFullError
from .keys import InvalidToken

log = logging.getLogger(__name__)

INDEX_SUFFIX = ".index"
FORMAT = 1
SAVE_AFTER = 500            # new lines decrypted since the last save before the index is written again
HEAD_BYTES = 120            # a Fernet token is longer: the first line's random IV is inside these bytes
WARM_NICE = 19              # the warm-up thread's CPU priority: the lowest there is
WARM_SLICE = 32             # lines the warm-up decrypts before it lets other threads have the interpreter
_COLUMNS = {"time": np.float64, "kind": np.int16, "user": np.int32, "uid": np.int32, "similarity": np.float32,
            "seconds": np.float32, "offset": np.int64, "length": np.int32}


@dataclass
class _Segment:
    """The indexed part of one log file."""

    inode: int
    head: str                   # digest of the file's first bytes
    size: int                   # bytes indexed (up to the end of the last whole line)
    cols: dict = field(default_factory=lambda: {k: np.zeros(0, t) for k, t in _COLUMNS.items()})

    def __len__(self) -> int:
        return len(self.cols["time"])


@dataclass(frozen=True)
class Events:
    """The indexed events, oldest first, as numpy columns. ``kinds``/``users`` decode the integer codes;
    ``user == -1`` means no user, ``similarity``/``seconds`` are NaN when absent; ``file`` is the position of
    the event's file in :attr:`files` (inodes)."""

    time: np.ndarray
    kind: np.ndarray
    user: np.ndarray
    uid: np.ndarray
    similarity: np.ndarray
    seconds: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    file: np.ndarray
    files: tuple
    kinds: tuple
    users: tuple
    uids: tuple = ()
    ordered: bool = True        # times never go backwards (the usual case): time ranges are found by bisection

    def __len__(self) -> int:
        return len(self.time)

    def kind_code(self, kind: str) -> int:
        return self.kinds.index(kind) if kind in self.kinds else -2

    def user_code(self, name: str) -> int:
        return self.users.index(name) if name in self.users else -2

    def of_kinds(self, *kinds: str) -> np.ndarray:
        """Boolean mask of events whose kind is one of ``kinds``."""
        codes = [self.kind_code(k) for k in kinds]
        return np.isin(self.kind, codes)

    def select(self, *, kinds=None, user: str | None = None, since: float | None = None,
               until: float | None = None, owner=None) -> np.ndarray:
        """Positions of the matching events, oldest first. ``owner`` (a User): only the events about that
        account, as :func:`edge.web.display.is_own` decides (by user id; an event without one by name, and only
        if it is not older than the account)."""
        lo, hi = 0, len(self)
        if self.ordered:
            if since is not None:
                lo = int(np.searchsorted(self.time, since, "left"))
            if until is not None:
                hi = int(np.searchsorted(self.time, until, "left"))
        part = slice(lo, hi)
        mask = np.ones(max(hi - lo, 0), bool)
        if kinds:
            mask &= np.isin(self.kind[part], [self.kind_code(k) for k in kinds])
        if user:
            mask &= self.user[part] == self.user_code(user)
        if owner is not None:
            uid = self.uids.index(owner.id) if owner.id in self.uids else -2
            by_name = (self.uid[part] == -1) & (self.user[part] == self.user_code(owner.username)) \
                & (self.time[part] >= owner.created)
            mask &= (self.uid[part] == uid) | by_name
        if not self.ordered:
            if since is not None:
                mask &= self.time[part] >= since
            if until is not None:
                mask &= self.time[part] < until
        return np.flatnonzero(mask) + lo

    def kind_names(self, positions) -> list[str]:
        return [self.kinds[c] for c in self.kind[positions]]

    def user_names(self, positions) -> list[str | None]:
        return [self.users[c] if c >= 0 else None for c in self.user[positions]]


class EventIndex:
    """The index of one :class:`edge.accesslog.AccessLog`. Thread-safe; ``refresh()`` before each view."""

    def __init__(self, access_log, *, path: str | os.PathLike | None = None, save_after: int = SAVE_AFTER):
        self.log = access_log
        self.path = Path(path) if path is not None else access_log.path.with_name(access_log.path.name + INDEX_SUFFIX)
        self.save_after = save_after
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._kinds: list[str] = []
        self._users: list[str] = []
        self._kind_codes: dict[str, int] = {}
        self._user_codes: dict[str, int] = {}
        self._uids: list[str] = []
        self._uid_codes: dict[str, int] = {}
        self._view: Events | None = None
        self._unsaved = 0
        self._loaded = False
        self._courteous = False     # yield the interpreter between slices of lines (the warm-up's refresh)
        self.decrypted = 0          # lines decrypted by the last refresh (for tests and the benchmark)
        self.warmed = threading.Event()     # set when warm() has built (and saved) the index
        self.warm_nice: int | None = None   # the priority the warm-up thread ran at (tests)

    # ------------------------------------------------------------------ public
    def refresh(self) -> Events:
        """Catch up with the log files and return the events, oldest first."""
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True
            self.decrypted = 0
            changed = self._catch_up()
            if changed or self._view is None:
                self._view = self._build_view()
            if self._unsaved >= self.save_after:
                self._save()
            return self._view

    def warm(self) -> threading.Thread:
        """Build the index now in the background (thread ``index``), so the first view does not wait for it."""
        thread = threading.Thread(target=self._warm, name="index", daemon=True)
        thread.start()
        return thread

    def _warm(self) -> None:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, WARM_NICE)     # per thread on Linux
            self.warm_nice = os.getpriority(os.PRIO_PROCESS, tid)
        except (OSError, AttributeError):
            pass            # not Linux, or not allowed: it still yields the interpreter between slices
        started = time.monotonic()
        try:
            self._courteous = True
            try:
                events = self.refresh()
            finally:
                self._courteous = False
            self.save()
            log.info("access log index: %d events ready in %.1f s", len(events), time.monotonic() - started)
        except Exception:                                   # a view builds it later; the door is not concerned
            log.exception("access log index: building it in the background failed")
        finally:
            self.warmed.set()

    def save(self) -> None:
        """Write the index now (the service calls it when it stops)."""
        with self._lock:
            if self._unsaved:
                self._save()

    def read_events(self, events: Events, positions) -> list[dict]:
        """Decrypt the log lines at ``positions`` of ``events`` (in that order); lines gone since (rotated away)
        or unreadable are left out."""
        paths = self._paths_by_inode()
        out = []
        handles: dict[int, BinaryIO] = {}
        try:
            for pos in positions:
                inode = events.files[events.file[pos]]
                path = paths.get(inode)
                if path is None:
                    continue
                fh = handles.get(inode)
                if fh is None:
                    try:
                        fh = handles[inode] = open(path, "rb")
                    except FileNotFoundError:
                        continue
                fh.seek(int(events.offset[pos]))
                line = fh.read(int(events.length[pos]))
                try:
                    out.append(json.loads(self.log.keyring.decrypt(line).decode("utf-8")))
                except (InvalidToken, ValueError, UnicodeDecodeError):
                    log.warning("access log index: an event line no longer decrypts; skipped it")
        finally:
            for fh in handles.values():
                fh.close()
        return out

    # ------------------------------------------------------------------ catching up
    def _paths_by_inode(self) -> dict[int, Path]:
        found = {}
        for path in self.log.files():
            try:
                found[os.stat(path).st_ino] = path
            except FileNotFoundError:
                continue
        return found

    def _catch_up(self) -> bool:
        self.log.keyring.refresh()
        changed = False
        present: dict[int, _Segment] = {}
        for path in self.log.files():                       # oldest first
            try:
                st = os.stat(path)
                with open(path, "rb") as fh:
                    head = _digest(fh.read(HEAD_BYTES))
                    segment = self._segments.get(st.st_ino)
                    if segment is None or segment.head != head or segment.size > st.st_size:
                        segment = _Segment(st.st_ino, head, 0)
                        changed = True
                    if st.st_size > segment.size:
                        fh.seek(segment.size)
                        data = fh.read(st.st_size - segment.size)
                        if self._add_lines(segment, data):
                            changed = True
            except FileNotFoundError:                       # rotated while we looked: the next refresh sees it
                continue
            present[segment.inode] = segment
        if set(present) != set(self._segments):
            changed = True
        self._segments = present
        return changed

    def _add_lines(self, segment: _Segment, data: bytes) -> bool:
        end = data.rfind(b"\n")
        if end < 0:
            return False                                    # no whole line yet (or a torn one)
        rows: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        position = segment.size
        for number, line in enumerate(data[:end].split(b"\n")):
            start, position = position, position + len(line) + 1
            if self._courteous and number % WARM_SLICE == 0:
                time.sleep(0)                               # the door's thread takes the interpreter if it waits
            if not line:
                continue
            try:
                event = json.loads(self.log.keyring.decrypt(line).decode("utf-8"))
            except (InvalidToken, ValueError, UnicodeDecodeError):
                continue                                    # the log reader reports damaged lines; skip here
            self.decrypted += 1
            rows["time"].append(_number(event.get("time"), 0.0))
            rows["kind"].append(self._code(self._kinds, self._kind_codes, str(event.get("kind"))))
            user = event.get("user")
            rows["user"].append(-1 if not user else self._code(self._users, self._user_codes, str(user)))
            uid = event.get("user_id")
            rows["uid"].append(-1 if not uid else self._code(self._uids, self._uid_codes, str(uid)))
            rows["similarity"].append(_number(event.get("similarity"), np.nan))
            rows["seconds"].append(_number(event.get("attempt_seconds"), np.nan))
            rows["offset"].append(start)
            rows["length"].append(len(line))
        segment.size += end + 1
        if rows["time"]:
            for key, values in rows.items():
                segment.cols[key] = np.concatenate([segment.cols[key], np.asarray(values, _COLUMNS[key])])
            self._unsaved += len(rows["time"])
        return True

    @staticmethod
    def _code(table: list[str], codes: dict[str, int], value: str) -> int:
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(table)
            table.append(value)
        return code

    def _build_view(self) -> Events:
        segments = list(self._segments.values())
        cols = {k: np.concatenate([s.cols[k] for s in segments]) if segments else np.zeros(0, t)
                for k, t in _COLUMNS.items()}
        file = np.concatenate([np.full(len(s), i, np.int16) for i, s in enumerate(segments)]) if segments \
            else np.zeros(0, np.int16)
        return Events(file=file, files=tuple(s.inode for s in segments), kinds=tuple(self._kinds),
                      users=tuple(self._users), uids=tuple(self._uids), ordered=bool(np.all(np.diff(cols["time"]) >= 0)), **cols)

    # ------------------------------------------------------------------ on disk
    def _save(self) -> None:
        segments = list(self._segments.values())
        meta = {"format": FORMAT, "kinds": self._kinds, "users": self._users, "uids": self._uids,
                "segments": [{"inode": s.inode, "head": s.head, "size": s.size, "rows": len(s)} for s in segments]}
        arrays = {k: (np.concatenate([s.cols[k] for s in segments]) if segments else np.zeros(0, t))
                  for k, t in _COLUMNS.items()}
        buf = io.BytesIO()
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        try:
            write_durable(self.path, self.log.keyring.encrypt(buf.getvalue()))
            self._unsaved = 0
        except (OSError, DiskFullError) as exc:
            log.warning("access log index: cannot save %s: %s (it is rebuilt from the log when needed)",
                        self.path, exc)

    def _load(self) -> None:
        try:
            token = self.path.read_bytes()
        except FileNotFoundError:
            return
        started = time.monotonic()
        try:
            self.log.keyring.refresh()
            plain = self.log.keyring.decrypt(token)
            with np.load(io.BytesIO(plain), allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("format") != FORMAT:
                    raise ValueError("another format")
                arrays = {k: data[k].astype(t, copy=False) for k, t in _COLUMNS.items()}
        except (InvalidToken, ValueError, KeyError, OSError) as exc:
            log.info("access log index %s not usable (%s); rebuilding it from the log", self.path,
                     type(exc).__name__)
            return
        self._kinds, self._users, self._uids = list(meta["kinds"]), list(meta["users"]), list(meta.get("uids", []))
        self._uid_codes = {u: i for i, u in enumerate(self._uids)}
        self._kind_codes = {k: i for i, k in enumerate(self._kinds)}
        self._user_codes = {u: i for i, u in enumerate(self._users)}
        start = 0
        for s in meta["segments"]:
            end = start + int(s["rows"])
            self._segments[int(s["inode"])] = _Segment(int(s["inode"]), str(s["head"]), int(s["size"]),
                                                       {k: v[start:end] for k, v in arrays.items()})
            start = end
        log.debug("access log index loaded in %.3f s", time.monotonic() - started)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _number(value, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default
