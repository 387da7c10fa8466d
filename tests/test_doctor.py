"""`edge-face doctor`: each check says ok / warning / failed with a reason, on real files, ports and models.

This machine has no camera and no GPIO: the doctor must say so clearly (and exit 1) instead of crashing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_models
from edge import config as edge_config
from edge.doctor import FAILED, OK, WARNING, Doctor, exit_code, render_text
from edge.door import on_a_raspberry_pi


def make_config(tmp_path: Path, **sections) -> Path:
    """A TOML file with a private state directory in tmp_path plus the given [section] tables."""
    sections.setdefault("paths", {}).setdefault("state_dir", str(tmp_path / "state"))
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def doctor(cfg_path: Path, **options) -> Doctor:
    return Doctor(edge_config.load(cfg_path), config_path=cfg_path, service_active=False, **options)


def result(doc: Doctor, name: str):
    [found] = doc.run((name,))
    assert found.status in (OK, WARNING, FAILED) and "\n" not in found.reason
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_on_this_machine_reports_missing_camera_and_gpio(tmp_path):
    if on_a_raspberry_pi():
        pytest.skip("this test describes a machine without Pi hardware")
    cfg = make_config(tmp_path, camera={"source": "auto"}, door={"pin_factory": "auto"},
                      web={"port": free_port()})
    done = subprocess.run([sys.executable, "-m", "edge", "--config", str(cfg), "doctor", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    assert done.returncode == 1
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert set(checks) == set(Doctor.CHECKS)
    assert checks["camera"]["status"] == FAILED and "no camera found" in checks["camera"]["reason"]
    assert checks["gpio"]["status"] == FAILED and "not a Raspberry Pi" in checks["gpio"]["reason"]
    assert checks["config"]["status"] == OK and checks["disk"]["status"] == OK
    assert checks["web"]["status"] == OK


def test_text_output_has_one_line_per_check_and_a_summary(tmp_path):
    cfg = make_config(tmp_path, camera={"source": "none"}, door={"pin_factory": "mock"})
    done = subprocess.run([sys.executable, "-m", "edge", "--config", str(cfg), "doctor", "--check", "camera",
                           "--check", "gpio", "--check", "disk"], capture_output=True, text=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["WARNING", "camera"], ["WARNING", "gpio"], ["OK", "disk"]]
    assert lines[-1] == "edge-face doctor: 0 failed, 2 warnings"
    assert done.returncode == 0, "warnings alone do not fail the doctor"


def test_bad_configuration_is_reported_and_the_rest_still_checked(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[door]\nrelay_pin = 99\n")
    done = subprocess.run([sys.executable, "-m", "edge", "--config", str(path), "doctor", "--json",
                           "--check", "config", "--check", "disk"], capture_output=True, text=True, timeout=60)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1
    assert checks["config"]["status"] == FAILED and "door.relay_pin" in checks["config"]["reason"]
    assert checks["disk"]["status"] == OK


def test_camera_folder_source_delivers_frames(tmp_path, faces_dir):
    folder = next(p for p in sorted(faces_dir.rglob("*")) if p.is_dir() and any(
        f.suffix.lower() in (".jpg", ".jpeg", ".png") for f in p.iterdir()))
    cfg = make_config(tmp_path, camera={"source": "folder", "folder": str(folder), "fps": 100.0})
    found = result(doctor(cfg), "camera")
    assert found.status == OK and "folder: 3 frames of" in found.reason


def test_camera_failure_is_a_line_not_a_crash(tmp_path):
    cfg = make_config(tmp_path, camera={"source": "opencv", "device": str(tmp_path / "no-such-video.mp4")})
    found = result(doctor(cfg), "camera")
    assert found.status == FAILED and "opencv" in found.reason and "no-such-video.mp4" in found.reason


class FakePicamera2:
    """The Pi camera cannot exist here: this follows picamera2's contract as edge.camera uses it."""

    def __init__(self, camera_num=0):
        import numpy as np

        self._frame = np.zeros((480, 640, 3), np.uint8)

    def create_video_configuration(self, **kwargs):
        return kwargs

    def configure(self, config):
        self.config = config

    def start(self):
        pass

    def capture_array(self, name="main", wait=None):
        return self._frame.copy()

    def wait(self, job, timeout=None):
        return job

    def stop(self):
        pass

    def close(self):
        pass


def test_picamera_source_reported_by_its_frames(tmp_path):
    cfg = make_config(tmp_path, camera={"source": "picamera"})
    found = result(doctor(cfg, picamera2_class=FakePicamera2), "camera")
    assert found.status == OK and found.reason == "picamera: 3 frames of 640x480 delivered", found.reason


def test_gpio_mock_is_a_warning_and_names_the_pins(tmp_path):
    cfg = make_config(tmp_path, door={"pin_factory": "mock", "buzzer_pin": "none"})
    found = result(doctor(cfg), "gpio")
    assert found.status == WARNING and "relay GPIO17" in found.reason and "buzzer" not in found.reason


def test_models_verified_and_a_tampered_copy_fails(tmp_path, models_dir):
    cfg = make_config(tmp_path, paths={"models_dir": str(models_dir)})
    good = result(doctor(cfg), "models")
    assert good.status == OK and "facenet-int8" in good.reason and "yunet" in good.reason
    copy = tmp_path / "models"
    copy_models(models_dir, copy, ids=None)
    with open(copy / "face_detection_yunet_2023mar.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\0\0\0\0")
    cfg = make_config(tmp_path, paths={"models_dir": str(copy)})
    bad = result(doctor(cfg), "models")
    assert bad.status == FAILED and "does not match the manifest" in bad.reason
    (copy / "manifest.json").unlink()
    missing = result(doctor(cfg), "models")
    assert missing.status == FAILED and "manifest.json is missing" in missing.reason


def init_database(cfg_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "edge", "--config", str(cfg_path), "db", "init"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr


def test_key_and_database_readable_with_private_modes(tmp_path):
    cfg_path = make_config(tmp_path)
    before = {c.name: c for c in doctor(cfg_path).run(("key", "database"))}
    assert before["key"].status == FAILED and "edge-face db init" in before["key"].reason
    assert before["database"].status == FAILED
    init_database(cfg_path)
    doc = doctor(cfg_path)
    key, database = doc.run(("key", "database"))
    assert key.status == OK and "mode 0600" in key.reason
    assert database.status == OK and "0 users" in database.reason
    secret = (tmp_path / "state" / "db.key").read_text().strip()
    assert secret not in render_text([key, database])

    (tmp_path / "state" / "db.key").chmod(0o644)
    key = result(doctor(cfg_path), "key")
    assert key.status == FAILED and "chmod 600" in key.reason and secret not in key.reason
    database = result(doctor(cfg_path), "database")
    assert database.status == FAILED and "db.key" in database.reason

    (tmp_path / "state" / "db.key").chmod(0o600)
    (tmp_path / "state").chmod(0o755)
    database = result(doctor(cfg_path), "database")
    assert database.status == FAILED and "chmod 700" in database.reason


def test_wrong_key_is_reported_not_raised(tmp_path):
    cfg_path = make_config(tmp_path)
    init_database(cfg_path)
    from cryptography.fernet import Fernet

    (tmp_path / "state" / "db.key").write_text(Fernet.generate_key().decode() + "\n")
    database = result(doctor(cfg_path), "database")
    assert database.status == FAILED and "cannot be decrypted" in database.reason


def test_web_port_in_use_and_free(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = make_config(tmp_path, web={"port": port})
        found = result(doctor(cfg), "web")
        assert found.status == FAILED and f"port {port}" in found.reason and "in use" in found.reason
        held = Doctor(edge_config.load(cfg), service_active=True).run(("web",))[0]
        assert held.status == OK and "running service" in held.reason
    found = result(doctor(cfg), "web")
    assert found.status == OK and f"https://127.0.0.1:{port} is free" in found.reason
    off = result(doctor(make_config(tmp_path, web={"enabled": False})), "web")
    assert off.status == OK and "disabled" in off.reason


def test_clock_before_2025_fails(tmp_path):
    cfg = make_config(tmp_path)
    old = result(doctor(cfg, now=lambda: 0.0), "clock")
    assert old.status == FAILED and "1970-01-01" in old.reason
    now = result(doctor(cfg), "clock")
    assert now.status in (OK, WARNING)


def test_ntp_answer_from_timedatectl(tmp_path):
    if not shutil.which("timedatectl"):
        pytest.skip("timedatectl not installed: the clock check then reports the NTP state as unknown")
    cfg = make_config(tmp_path)

    def answer(text, code=0):
        return lambda argv: subprocess.CompletedProcess(argv, code, text, "")

    assert result(doctor(cfg, command=answer("yes\n")), "clock").status == OK
    unsynced = result(doctor(cfg, command=answer("no\n")), "clock")
    assert unsynced.status == WARNING and "not synchronised" in unsynced.reason


def test_a_check_that_raises_becomes_a_failed_line(tmp_path):
    def broken(argv):
        raise RuntimeError("dbus went away\nsecond line")

    doc = doctor(make_config(tmp_path), command=broken)
    if not shutil.which("timedatectl"):
        doc.check_clock = lambda: broken([])
    found = result(doc, "clock")
    assert found.status == FAILED and found.reason == "RuntimeError: dbus went away"


def test_disk_space_and_exit_code(tmp_path):
    results = doctor(make_config(tmp_path)).run(("disk",))
    assert results[0].status == OK and "GiB free" in results[0].reason
    assert exit_code(results) == 0
    assert exit_code(results + doctor(make_config(tmp_path), now=lambda: 0.0).run(("clock",))) == 1


def test_state_directory_not_existing_is_reported(tmp_path):
    cfg = make_config(tmp_path, paths={"state_dir": str(tmp_path / "missing" / "state")})
    found = result(doctor(cfg), "database")
    assert found.status == FAILED and "does not exist" in found.reason
    assert os.path.exists(tmp_path / "missing") is False, "the doctor creates nothing"
