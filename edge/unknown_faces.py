"""The encrypted archive of unknown faces (``decision.keep_unknown_photos``).

Each crop is a JPEG encrypted with the database key (so a stolen SD card shows no faces), written with mode 0600
into ``<state_dir>/unknown``; only the newest :data:`KEPT` are kept. The access log refers to a crop by its file
name. A failure here is logged and never stops the door.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .keys import KeyRing

log = logging.getLogger(__name__)

KEPT = 200
SUFFIX = ".jpg.fernet"


class UnknownFaceArchive:
    def __init__(self, folder: Path, keyring: KeyRing, *, kept: int = KEPT,
                 clock: Callable[[], float] = time.time):
        self.folder = Path(folder)
        self.keyring = keyring
        self.kept = kept
        self.clock = clock

    def keep(self, crop: np.ndarray | None) -> str | None:
        """Store one crop; returns its file name for the access log, or None if there is nothing or it failed."""
        if crop is None:
            return None
        try:
            ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise ValueError("the crop could not be encoded as JPEG")
            self.folder.mkdir(mode=0o700, exist_ok=True)
            now = self.clock()
            name = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{time.time_ns() % 1_000_000:06d}{SUFFIX}"
            fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.keyring.encrypt(bytes(data)))
            for old in sorted(self.folder.glob(f"*{SUFFIX}"))[:-self.kept]:
                old.unlink(missing_ok=True)
            return name
        except Exception as exc:
            log.error("cannot keep the photograph of an unknown face: %s", exc)
            return None
