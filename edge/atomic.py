"""Durable file replacement and inter-process write locks.

A door's database must survive a power cut or a SIGKILL at any instant, so a file is never rewritten in place:
the new content goes to a temporary file in the same directory, is flushed and fsync'ed, atomically renamed over
the old name with ``os.replace`` and then the directory itself is fsync'ed so the rename is on disk too. A reader
therefore sees either the old or the new file, never a mixture.

Writers from different processes (the daemon and an admin's CLI) serialise through :class:`FileLock`, an
``fcntl.flock`` on a small lock file next to the data. The holder writes its pid into the lock file so the one
that has to wait can say who is in the way.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from .diskspace import disk_full_error, is_disk_full
from .errors import StoreError

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o600


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written (a regular file may take a short write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _temporary(path: Path) -> Path:
    """A unique name beside ``path`` (same directory, so a rename or link to ``path`` is atomic)."""
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}"


def _write_synced(path: Path, data: bytes, mode: int) -> Path:
    """``data`` in a new temporary file beside ``path``, created with ``mode`` and fsync'ed; returns its name."""
    tmp = _temporary(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_durable(path: str | os.PathLike, data: bytes, *, mode: int = PRIVATE_MODE,
                  keep_previous: str | os.PathLike | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    With ``keep_previous`` the current file (if any) is first hard-linked there, so the previous generation
    survives as a backup and ``path`` itself never disappears, even for an instant. A full disk is a
    :class:`~edge.errors.DiskFullError` and leaves ``path`` as it was.
    """
    path = Path(path)
    try:
        _replace(path, data, mode, keep_previous)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path) from None
        raise


def _replace(path: Path, data: bytes, mode: int, keep_previous) -> None:
    tmp = _write_synced(path, data, mode)
    try:
        if keep_previous is not None and path.exists():
            link_tmp = _temporary(Path(keep_previous))
            os.link(path, link_tmp)
            os.replace(link_tmp, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: str | os.PathLike, data: bytes, *, mode: int = PRIVATE_MODE) -> None:
    """Create a new file that must not exist yet: used for keys, which are never overwritten.

    The content is written and fsync'ed under a temporary name and then hard-linked to ``path``; ``link`` fails
    if ``path`` exists, and a power cut never leaves an empty key.
    """
    path = Path(path)
    try:
        tmp = _write_synced(path, data, mode)
        try:
            os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path) from None
        raise


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete temporary files a killed writer left next to ``path`` (they never hold committed data)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}*.tmp-*"):
        try:
            stale.unlink()
        except OSError:
            pass


class FileLock:
    """An exclusive ``flock`` on ``path``; waits up to ``timeout`` seconds, then raises StoreError.

    Re-entrant for the thread that holds it (nested transactions do not deadlock on themselves) and exclusive
    between threads too, because the daemon's web and recognition threads share one store.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 5.0, what: str = "the database"):
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise StoreError(f"{self.what} is busy in another thread of this process for {self.timeout:g} s; "
                             "try again")
        if self._depth:
            self._depth += 1
            return
        try:
            self._acquire_file(deadline)
        except BaseException:
            self._thread_lock.release()
            raise

    def _acquire_file(self, deadline: float) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                holder = self._holder(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise StoreError(
                    f"{self.what} is locked by another writer{who} and stayed locked for {self.timeout:g} s; "
                    f"wait for it to finish and try again (lock file {self.path})")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only a courtesy for the error message
        self._fd = fd
        self._depth = 1

    @staticmethod
    def _holder(fd: int) -> int | None:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def release(self) -> None:
        if not self._depth:
            return
        self._depth -= 1
        try:
            if not self._depth:
                fd, self._fd = self._fd, None
                assert fd is not None            # depth > 0 means the file is open
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._thread_lock.release()

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def close(self) -> None:
        while self._depth:
            self.release()
