"""Small encrypted face thumbnails for the door's decisions (grant, deny, unknown, spoof, lockout).

Why: an administrator reading the log wants to *see* who stood at the door, and an unknown face can be enrolled
from its thumbnail in two clicks. Why encrypted: a stolen SD card must show no faces, so every thumbnail is a
JPEG encrypted with the database key ring (Fernet) and written with mode 0600; nothing readable lands on disk.

Layout: ``<state_dir>/faces/<YYYYMMDD>/<HHMMSS>-<micro>.jpg.fernet``; the access log refers to a thumbnail by
its name ``YYYYMMDD/HHMMSS-micro`` (the event's ``photo`` field). The crop is the aligned face the model saw
(at most :data:`MAX_SIDE` pixels a side), so "enrol as" can embed it again without detecting anything.

Retention (oldest removed first): day folders older than ``days`` go, and while the total passes ``max_bytes``
the oldest files go. The sizes are tallied once (one scan, on first use) and then kept in memory, so keeping a
thumbnail costs one small encode, encrypt and write, never a directory listing of a year of faces.
Failures are logged and never stop the door.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .atomic import write_durable
from .keys import InvalidToken, KeyRing

log = logging.getLogger(__name__)

FOLDER_NAME = "faces"
SUFFIX = ".jpg.fernet"
MAX_SIDE = 160
JPEG_QUALITY = 85
KINDS = ("grant", "deny", "unknown", "spoof", "lockout")   # decisions that keep a thumbnail
_NAME_RE = re.compile(r"^(\d{8})/(\d{6}-\d{6}(?:-\d+)?)$")
_DAY_RE = re.compile(r"^\d{8}$")


def valid_name(name: str) -> bool:
    """True for a name :meth:`EventFaces.keep` can have returned (never a path that leaves the folder)."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


class EventFaces:
    """The thumbnail archive. ``keep(crop) -> name`` (door thread), ``read(name) -> JPEG`` (web threads)."""

    def __init__(self, folder: str | os.PathLike, keyring: KeyRing, *, days: float = 90, max_bytes: int = 50_000_000,
                 clock: Callable[[], float] = time.time):
        self.folder = Path(folder)
        self.keyring = keyring
        self.days = float(days)
        self.max_bytes = int(max_bytes)
        self.clock = clock
        self._lock = threading.Lock()
        self._days: OrderedDict[str, dict[str, int]] | None = None   # day -> {file name: size}, oldest first
        self._total = 0
        self._pruned_day = ""

    @classmethod
    def open(cls, cfg, keyring: KeyRing, **options) -> "EventFaces":
        return cls(cfg.state_dir / FOLDER_NAME, keyring, **options)

    def __repr__(self) -> str:
        return f"EventFaces({str(self.folder)!r})"

    @property
    def enabled(self) -> bool:
        return self.days > 0 and self.max_bytes > 0

    # ------------------------------------------------------------------ writing
    def keep(self, crop: np.ndarray | None) -> str | None:
        """Store one face crop; its name for the access log, or None (nothing to keep, disabled, or failed)."""
        if crop is None or not self.enabled:
            return None
        try:
            data = encode_thumbnail(crop)
            token = self.keyring.encrypt(data)
            now = self.clock()
            day = time.strftime("%Y%m%d", time.localtime(now))
            stem = time.strftime("%H%M%S", time.localtime(now)) + f"-{int(now * 1e6) % 1_000_000:06d}"
            with self._lock:
                days = self._tally()
                folder = self.folder / day
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                stem = self._unused(folder, stem)
                fd = os.open(folder / (stem + SUFFIX), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(token)
                days.setdefault(day, {})[stem] = len(token)
                self._total += len(token)
                self._prune_locked(now)
            return f"{day}/{stem}"
        except Exception as exc:
            log.error("cannot keep a face thumbnail: %s", exc)
            return None

    @staticmethod
    def _unused(folder: Path, stem: str) -> str:
        if not (folder / (stem + SUFFIX)).exists():
            return stem
        n = 1
        while (folder / f"{stem}-{n}{SUFFIX}").exists():
            n += 1
        return f"{stem}-{n}"

    # ------------------------------------------------------------------ reading
    def path_of(self, name: str) -> Path | None:
        match = _NAME_RE.match(name) if isinstance(name, str) else None
        if match is None:
            return None
        return self.folder / match.group(1) / (match.group(2) + SUFFIX)

    def read(self, name: str) -> bytes | None:
        """The JPEG of a thumbnail; None if the name is not one of ours, it was removed, or it does not decrypt."""
        path = self.path_of(name)
        if path is None:
            return None
        try:
            token = path.read_bytes()
        except FileNotFoundError:
            return None
        self.keyring.refresh()
        try:
            return self.keyring.decrypt(token)
        except InvalidToken:
            log.warning("face thumbnail %s does not decrypt (damaged, or another key)", name)
            return None

    def image(self, name: str) -> np.ndarray | None:
        """The thumbnail as a BGR array (for "enrol as"), or None."""
        data = self.read(name)
        if data is None:
            return None
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return image

    def reencrypt(self) -> int:
        """Re-encrypt every thumbnail under the key ring's newest key (``edge-face keys rotate``); returns how
        many could not be decrypted and were left as they were."""
        kept = 0
        with self._lock:
            self.keyring.refresh()
            for path in sorted(self.folder.glob("*/*" + SUFFIX)) if self.folder.is_dir() else []:
                try:
                    write_durable(path, self.keyring.rotate(path.read_bytes()))
                except InvalidToken:
                    kept += 1
            self._days = None                              # sizes changed a little: tally again when needed
        return kept

    # ------------------------------------------------------------------ retention
    def usage(self) -> tuple[int, int]:
        """(thumbnails, bytes) on disk."""
        with self._lock:
            return sum(len(d) for d in self._tally().values()), self._total

    def prune(self) -> int:
        """Apply the retention now; returns how many thumbnails were removed (a failure is logged, not raised)."""
        try:
            with self._lock:
                return self._prune_locked(self.clock(), force=True)
        except OSError as exc:
            log.error("cannot apply the face thumbnail retention in %s: %s", self.folder, exc)
            return 0

    def _tally(self) -> OrderedDict[str, dict[str, int]]:
        """The sizes on disk, day by day (oldest first): scanned once, then kept up to date in memory."""
        if self._days is not None:
            return self._days
        days: OrderedDict[str, dict[str, int]] = OrderedDict()
        total = 0
        if self.folder.is_dir():
            for day_dir in sorted(p for p in self.folder.iterdir() if p.is_dir() and _DAY_RE.match(p.name)):
                files = {}
                for f in sorted(day_dir.glob("*" + SUFFIX)):
                    try:
                        size = f.stat().st_size
                    except FileNotFoundError:
                        continue
                    files[f.name[:-len(SUFFIX)]] = size
                    total += size
                days[day_dir.name] = files
        self._days, self._total = days, total
        return days

    def _prune_locked(self, now: float, force: bool = False) -> int:
        days = self._tally()
        removed = 0
        today = time.strftime("%Y%m%d", time.localtime(now))
        if force or today != self._pruned_day:           # the age rule only changes when the day does
            self._pruned_day = today
            oldest_kept = time.strftime("%Y%m%d", time.localtime(now - self.days * 86400))
            for day in [d for d in days if d < oldest_kept]:
                removed += len(days[day])
                self._total -= sum(days.pop(day).values())
                shutil.rmtree(self.folder / day, ignore_errors=True)
        while self._total > self.max_bytes and days:
            day, files = next(iter(days.items()))
            if not files:
                days.pop(day)
                _rmdir(self.folder / day)
                continue
            stem = next(iter(files))                        # names grow with time: the oldest
            self._total -= files.pop(stem)
            (self.folder / day / (stem + SUFFIX)).unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("face thumbnails: removed %d old ones (retention %g days, %d bytes)", removed, self.days,
                     self.max_bytes)
        return removed


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def encode_thumbnail(crop: np.ndarray) -> bytes:
    """A face crop as a small JPEG (at most :data:`MAX_SIDE` pixels a side)."""
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3:
        raise ValueError("the face crop is not an 8-bit colour image")
    h, w = crop.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the face crop could not be encoded as JPEG")
    return bytes(data)
