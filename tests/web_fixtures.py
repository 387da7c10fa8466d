"""Helpers for the admin web page's tests: a real store and access log in tmp_path, a controller double.

The controller stands in for the daemon (camera + door thread), which these tests do not run: it follows the
contract in docs/architecture.md and records what the web page asked of it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from webtest import TestApp

from edge.accesslog import AccessLog
from edge.config import Config
from edge.health import HealthRecorder
from edge.keys import init_keys
from edge.liveview import LiveView
from edge.status import CameraStatus, PinStatus, Status
from edge.store import DB_FILE_NAME, Store
from edge.web import create_app

PASSWORD = "correct horse battery"
ROUNDS = 4                       # bcrypt cost for WebTest runs; the real-server tests keep the store's 12
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_backend(state_dir: Path, *, bcrypt_rounds: int = 12, **web):
    """(cfg, store, log) over a brand-new encrypted database in ``state_dir``."""
    cfg = Config().replace("paths", state_dir=str(state_dir))
    if web:
        cfg = cfg.replace("web", **web)
    ring, _ = init_keys(cfg)
    store = Store.create(cfg.state_dir / DB_FILE_NAME, ring, defaults=cfg.decision,
                         max_unlock_seconds=cfg.door.max_unlock_seconds, bcrypt_rounds=bcrypt_rounds)
    log = AccessLog.open(cfg, keyring=ring)
    return cfg, store, log


def reopen_store(store) -> Store:
    """A second, independent reader of the same file: proves what is on disk, not what is in memory."""
    return Store(store.path, store.keyring)


class ControllerDouble:
    """The daemon as the web page sees it; the camera shows a fixed real photograph."""

    def __init__(self, log: AccessLog, frame: np.ndarray | None, *, config: Config):
        self.config = config     # the daemon's configuration in force (SIGHUP replaces it)
        self.log = log
        self.frame = frame
        self.unlocked_by: list[str] = []
        self.reloads = 0
        self.captures: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._seq = 0
        self.health = HealthRecorder()          # what the daemon's door loop and event hub would fill in
        self.live = LiveView(self._latest, lambda: None, fps=5)

    def _latest(self, *, after: int = 0, timeout: float | None = None):
        """The camera: the same photograph as a new frame each time it is asked."""
        if self.frame is None:
            return after, 0.0, None
        with self._lock:
            self._seq += 1
            return self._seq, 0.0, self.frame

    def status(self) -> Status:
        camera = CameraStatus(state="running" if self.frame is not None else "stopped", source="folder", fps=15.0)
        return Status(camera=camera, unlocked=False, door_open=None, held_open=False,
                      pins=(PinStatus("relay", 17, "off"),), simulated_pins=True, fps=15.0, last_decision=None,
                      users=0, model="double", uptime_seconds=1.0)

    def snapshot_jpeg(self) -> bytes | None:
        return self.live.snapshot()

    def live_stream(self, viewer=None):
        return self.live.stream(viewer)

    def health_series(self):
        return self.health.series()

    def capture_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        self.captures.append((count, seconds))
        return [] if self.frame is None else [self.frame.copy() for _ in range(count)]

    def capture_enrolment_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        self.prompts = getattr(self, "prompts", 0) + 1
        return self.capture_frames(count, seconds)

    def remote_unlock(self, admin_username: str, *, admin_id: str | None = None,
                      address: str | None = None) -> None:
        with self._lock:
            self.unlocked_by.append(admin_username)
        self.log.append("remote_unlock", user=admin_username, user_id=admin_id, address=address, source="web")

    def reload(self) -> None:
        self.reloads += 1


@dataclass
class DoorSite:
    """The admin page of a door: its backend, the controller double, and two browsers already logged in."""

    cfg: Config
    store: Store
    log: AccessLog
    controller: ControllerDouble
    app: Any
    admin: TestApp              # root, an active admin
    mia: TestApp                # mia, an active member, from another address


def door_site(state_dir: Path, faces_dir: Path, *, engine=None, **web) -> DoorSite:
    """A door whose camera shows a real photograph, with ``root`` (admin) and ``mia`` (member) logged in."""
    cfg, store, log = make_backend(state_dir, bcrypt_rounds=ROUNDS, **web)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    store.add_user(username="mia", email="m@x.org", password=PASSWORD, status="active")
    frame = cv2.imread(str(faces_dir / "face_recognition_examples/obama/obama.jpg"))
    controller = ControllerDouble(log, frame, config=cfg)
    app = create_app(cfg, store=store, log=log, engine=engine, controller=controller)
    admin, mia = client(app), client(app, "192.0.2.5")
    login(admin, "root")
    login(mia, "mia")
    return DoorSite(cfg, store, log, controller, app, admin, mia)


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def client(app, addr="192.0.2.10") -> TestApp:
    """A WebTest client that looks like a browser on the LAN over HTTPS."""
    return TestApp(app, extra_environ={"wsgi.url_scheme": "https", "REMOTE_ADDR": addr})


def form_for(page, action):
    for form in page.forms.values():
        if form.action == action:
            return form
    raise AssertionError(f"no form posting to {action}")


def login(c: TestApp, username, password=PASSWORD, status=303):
    form = form_for(c.get("/login"), "/login")
    form["username"], form["password"] = username, password
    return form.submit(status=status)
