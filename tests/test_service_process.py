"""`edge-face run` as systemd runs it: a real process, signals, and the relay as the process logs it.

The observable is the log: every relay change is one stderr line with its reason
(``pin relay GPIO17 on (grant ...)``, ``... off (shutdown)``), and the encrypted access log in the state folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from conftest import REPO_ROOT as REPO, camera_frame as canvas


class Daemon:
    """`python -m edge --config FILE run` with its stderr collected line by line."""

    def __init__(self, config: Path):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(config), "run"],
                                     cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return any(text in line for line in self.lines)
            time.sleep(0.02)
        return False

    def finish(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)


@pytest.fixture
def installation(tmp_path, faces_dir, models_dir, engine):
    """A configuration file, an encrypted database with one enrolled person, and a camera folder showing them."""
    from edge.config import load
    from edge.keys import init_keys
    from edge.recognition import load_image
    from edge.store import DB_FILE_NAME, Store

    from edge.errors import ImageError

    def enrolable(d):
        try:
            return [engine.enrollment_face(load_image(p)).embedding for p in sorted(d.glob("*.jpg"))[:3]]
        except ImageError:
            return None

    for person in sorted(d for d in (faces_dir / "lfw_view1").iterdir()
                         if d.is_dir() and len(list(d.glob("*.jpg"))) >= 6):
        templates = enrolable(person)
        if templates:
            break
    photos = sorted(person.glob("*.jpg"))
    cam = tmp_path / "cam"
    cam.mkdir()
    for i, p in enumerate(photos[3:]):
        for j in range(4):
            cv2.imwrite(str(cam / f"{i:02d}{j}.png"), canvas(p))
    config = tmp_path / "edge-face.toml"
    config.write_text(f"""
[paths]
state_dir = "state"
models_dir = "{models_dir}"

[camera]
source = "folder"
folder = "cam"
fps = 15

[door]
pin_factory = "mock"
max_unlock_seconds = 30

[decision]
unlock_seconds = 25
cooldown_seconds = 60

[liveness]
mode = "off"

[web]
enabled = false
""")
    cfg = load(config)
    cfg.state_dir.mkdir()
    store = Store.create(cfg.state_dir / DB_FILE_NAME, init_keys(cfg)[0], defaults=cfg.decision,
                         max_unlock_seconds=cfg.door.max_unlock_seconds, bcrypt_rounds=4)
    user = store.add_user(username="resident", email="resident@example.org", status="active")
    for embedding in templates:
        store.add_template(user.id, embedding, model_id=engine.model_id)
    return config, cfg


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_an_unlock_releases_the_relay_and_exits_cleanly(installation, signum):
    config, cfg = installation
    daemon = Daemon(config)
    try:
        assert daemon.wait_for("pin relay GPIO17 on (grant user "), "\n".join(daemon.lines[-30:])
        daemon.proc.send_signal(signum)
        code = daemon.finish()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    log = "\n".join(daemon.lines)
    assert code == 0, log
    relay_lines = [line for line in daemon.lines if "pin relay GPIO17" in line]
    # on for the grant, then off because of the shutdown - not because the 25 s pulse ran out
    assert [line.split("GPIO17 ")[1][:15] for line in relay_lines] == ["on (grant user ", "off (shutdown)"], log
    assert "SIMULATED" in log and "Traceback" not in log
    assert "GRANT resident" not in log and "grant resident" not in log   # by user id only (issue 11, item 10)

    from edge.accesslog import AccessLog

    events = [e["kind"] for e in AccessLog.open(cfg).events()]
    assert events[0] == "service_start" and "grant" in events and events[-1] == "service_stop"


def test_a_bad_configuration_is_a_sentence_not_a_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[door]\nrelay_pin = "seventeen"\n')
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "door.relay_pin: must be a whole number" in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_database_is_explained(tmp_path, models_dir):
    config = tmp_path / "c.toml"
    config.write_text(f'[paths]\nstate_dir = "state"\nmodels_dir = "{models_dir}"\n[camera]\nsource = "none"\n'
                      '[door]\npin_factory = "mock"\n[web]\nenabled = false\n')
    proc = subprocess.run([sys.executable, "-m", "edge", "--config", str(config), "run"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "edge-face db init" in proc.stderr and "Traceback" not in proc.stderr


def test_sighup_reloads_the_configuration_and_the_gallery(installation):
    config, cfg = installation
    config.write_text(config.read_text().replace('source = "folder"', 'source = "none"'))
    daemon = Daemon(config)
    try:
        assert daemon.wait_for("ready:"), "\n".join(daemon.lines[-30:])
        config.write_text(config.read_text().replace("unlock_seconds = 25", "unlock_seconds = 4")
                          .replace("cooldown_seconds = 60", "cooldown_seconds = 7"))
        daemon.proc.send_signal(signal.SIGHUP)
        assert daemon.wait_for("reloaded"), "\n".join(daemon.lines[-30:])
        assert daemon.wait_for("cooldown_seconds=7.0"), "\n".join(daemon.lines[-30:])  # the new policy is in force
        assert daemon.proc.poll() is None  # still running
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
