"""Server-side login sessions.

The cookie carries only an opaque random token; everything else (who, since when, the CSRF token) stays in this
process. That is enough because the daemon is a single process, and a restart logging everybody out is the safe
failure for a door. Sessions are looked up by the SHA-256 digest of the token, so lookups compare digests, not
the secret itself; expiry is checked on every lookup (idle and absolute timeouts).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Session:
    """One signed-in browser. ``token`` is set only on the object returned by :meth:`SessionStore.create`."""

    user_id: str
    csrf: str
    created: float
    last_seen: float
    token: str = ""
    flash: list[str] = field(default_factory=list)
    privileged: bool = False        # an administrator's: evicted only when every session is one


class SessionStore:
    """Sessions in memory with idle and absolute timeouts; thread-safe, bounded in size."""

    def __init__(self, *, idle_seconds: float, absolute_seconds: float, max_sessions: int = 2000,
                 per_user: int = 20, clock=time.monotonic):
        self.idle_seconds = float(idle_seconds)
        self.absolute_seconds = float(absolute_seconds)
        self.max_sessions = int(max_sessions)
        self.per_user = int(per_user)
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user_id: str, *, privileged: bool = False) -> Session:
        """A fresh session (new token, new CSRF token): called at every login, which rotates the token.

        The table is bounded: one user keeps at most ``per_user`` sessions (their oldest goes), and when the table
        is full the least recently used *unprivileged* session goes, so logging in many times (or many accounts)
        cannot push an administrator out."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        session = Session(user_id=user_id, csrf=secrets.token_urlsafe(32), created=now, last_seen=now,
                          privileged=privileged)
        with self._lock:
            self._prune(now)
            own = [k for k, s in self._sessions.items() if s.user_id == user_id]
            if len(own) >= self.per_user:
                del self._sessions[min(own, key=lambda k: self._sessions[k].last_seen)]
            if len(self._sessions) >= self.max_sessions:
                ordinary = [k for k, s in self._sessions.items() if not s.privileged] or list(self._sessions)
                oldest = min(ordinary, key=lambda k: self._sessions[k].last_seen)
                del self._sessions[oldest]
            self._sessions[_digest(token)] = session
        session.token = token
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie value, touching its idle timer; None if unknown or expired."""
        if not token:
            return None
        key = _digest(token)
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                return None
            session.last_seen = now
            return session

    def destroy(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def destroy_user(self, user_id: str) -> int:
        """End every session of one user (disabled, deleted, password reset); returns how many."""
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.user_id == user_id]
            for k in keys:
                del self._sessions[k]
        return len(keys)

    def __len__(self) -> int:
        with self._lock:
            self._prune(self.clock())
            return len(self._sessions)

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _expired(self, session: Session, now: float) -> bool:
        return (now - session.last_seen > self.idle_seconds
                or now - session.created > self.absolute_seconds)

    def _prune(self, now: float) -> None:
        dead = [k for k, s in self._sessions.items() if self._expired(s, now)]
        for k in dead:
            del self._sessions[k]
