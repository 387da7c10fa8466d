"""A whole door service for tests: real store, keys and access log on disk, a folder camera playing the given
frames, gpiozero pins from the caller's MockFactory, no web page."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edge.accesslog import AccessLog
from edge.camera import FolderSource
from edge.config import Config
from edge.keys import init_keys
from edge.service import DoorService
from edge.store import DB_FILE_NAME, Store


def folder_door_service(tmp_path: Path, engine, frames, factory, **liveness) -> DoorService:
    """The service over ``frames`` (BGR arrays) at 15 fps; ``liveness`` overrides ``[liveness]`` settings."""
    cfg = Config().replace("paths", state_dir=str(tmp_path / "state")).replace("liveness", **liveness)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    ring, _ = init_keys(cfg)
    store = Store.create(cfg.state_dir / DB_FILE_NAME, ring, defaults=cfg.decision,
                         max_unlock_seconds=cfg.door.max_unlock_seconds, bcrypt_rounds=4)
    folder = tmp_path / "cam"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return DoorService(cfg, engine=engine, store=store, log_=AccessLog.open(cfg, keyring=ring),
                       source=FolderSource(folder=folder, fps=15), pin_factory=factory, web=False)


def wait_until(predicate, timeout=60.0, step=0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value (a loaded machine is slow)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
