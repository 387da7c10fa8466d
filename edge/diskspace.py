"""A full SD card, said in words: which errors mean "the disk is full" and how much space is left.

An SD card fills up (a runaway log of another program, a forgotten copy): every write then fails with ENOSPC.
Committed data is safe because writes are atomic (:mod:`edge.atomic`); what a person needs is one sentence that
says the disk is full, not a traceback, and a warning before it happens.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import DiskFullError

DISK_FULL_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT))


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_error(path: str | os.PathLike | None, what: str = "the file") -> DiskFullError:
    """The one-sentence error for a write of ``what`` to ``path`` that failed with ENOSPC or EDQUOT."""
    where = f" ({path})" if path else ""
    return DiskFullError(f"the disk is full: {what}{where} could not be written and nothing was changed; "
                         f"free some space on that disk and try again (edge-face doctor shows how much is left)")


def free_bytes(path: str | os.PathLike) -> int:
    """Free space for an unprivileged writer on the file system that holds ``path`` (or its nearest parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def human_size(n: float) -> str:
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"
