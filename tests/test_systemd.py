"""The systemd unit: what the issue requires of it, `systemd-analyze verify` and the security exposure.

`verify` needs ExecStart= to name an existing executable, so the unit is checked as a copy whose ExecStart points
at a real script in tmp_path (everything else unchanged).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, missing

UNIT = REPO_ROOT / "systemd" / "edge-face.service"
MAX_EXPOSURE = 2.0


def directives(text: str) -> dict[str, list[str]]:
    """Key -> every value it is given, in order (systemd allows repeated keys such as DeviceAllow=)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(d: dict[str, list[str]], key: str) -> str:
    assert key in d, f"{key}= missing from the unit"
    return d[key][-1]


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return directives(UNIT.read_text())


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if not tool:
        missing("systemd-analyze not installed (apt-get install systemd)")
    return tool


def verifiable_copy(tmp_path: Path, unit_text: str, dropins: dict[str, str] | None = None) -> Path:
    """The unit with ExecStart= on a real executable, plus optional drop-ins next to it."""
    exe = tmp_path / "bin" / "edge-face"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = unit_text.replace("/opt/edge-face/venv/bin/edge-face", str(exe))
    assert str(exe) in text
    path = tmp_path / "edge-face.service"
    path.write_text(text)
    if dropins:
        d = tmp_path / "edge-face.service.d"
        d.mkdir(exist_ok=True)
        for name, body in dropins.items():
            (d / name).write_text(body)
    return path


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([systemd_analyze(), "verify", "--man=no", str(path)], capture_output=True, text=True,
                          cwd=path.parent)


def test_notify_watchdog_and_restart_policy(unit):
    assert one(unit, "Type") == "notify"
    assert one(unit, "NotifyAccess") == "main"
    assert int(one(unit, "WatchdogSec")) > 0
    assert one(unit, "Restart") == "on-failure"
    # A rate limit: a crash loop ends in "failed" instead of restarting for ever.
    assert int(one(unit, "StartLimitBurst")) >= 1 and int(one(unit, "StartLimitIntervalSec")) > 0
    assert one(unit, "ExecStart").endswith("--config /etc/edge-face/config.toml run")


def test_dedicated_user_directories_and_writable_working_directory(unit):
    assert one(unit, "User") == "edge-face"
    assert {"video", "gpio"} <= set(one(unit, "SupplementaryGroups").split())
    assert "DynamicUser" not in unit
    assert one(unit, "StateDirectory") == "edge-face" and one(unit, "StateDirectoryMode") == "0700"
    assert one(unit, "ConfigurationDirectory") == "edge-face"
    runtime = one(unit, "RuntimeDirectory")
    # lgpio creates its notification pipe in the working directory: it must be the writable runtime directory.
    assert one(unit, "WorkingDirectory") in (f"/run/{runtime}", f"%t/{runtime}")


def test_hardening_keeps_camera_and_gpio_devices(unit):
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "NoNewPrivileges": "yes", "DevicePolicy": "closed"}.items():
        assert one(unit, key) == value, key
    assert unit["CapabilityBoundingSet"] == [""]
    assert "PrivateDevices" not in unit, "PrivateDevices= hides /dev/video*, /dev/media* and /dev/gpiochip*"
    allowed = {v.split()[0] for v in unit["DeviceAllow"]}
    assert {"char-video4linux", "char-media", "char-dma_heap", "char-gpiochip"} <= allowed
    assert all(v.split()[1] == "rw" for v in unit["DeviceAllow"])
    assert set(one(unit, "RestrictAddressFamilies").split()) >= {"AF_UNIX", "AF_INET"}
    assert unit["SystemCallFilter"][0] == "@system-service"
    # gpiozero identifies the board through /proc/device-tree and /proc/cpuinfo.
    assert "ProcSubset" not in unit


def test_verify_reports_nothing(tmp_path):
    done = verify(verifiable_copy(tmp_path, UNIT.read_text()))
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr.strip() == "", done.stderr


def test_verify_with_the_credential_dropin(tmp_path):
    dropin = "[Service]\nLoadCredential=edge-face-key:/etc/credstore/edge-face-key\n"
    done = verify(verifiable_copy(tmp_path, UNIT.read_text(), {"credential.conf": dropin}))
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_verify_catches_a_broken_unit(tmp_path):
    """The verify tests above can fail: a bad value and an unknown directive are reported."""
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt\nProtectEverything=yes")
    done = verify(verifiable_copy(tmp_path, broken))
    assert "strikt" in done.stderr and "ProtectEverything" in done.stderr


def exposure(path: Path) -> float:
    done = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--no-pager", str(path)],
                          capture_output=True, text=True, cwd=path.parent)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout[-2000:] + done.stderr
    return float(found.group(1))


def test_security_exposure_is_at_most_2(tmp_path):
    score = exposure(verifiable_copy(tmp_path, UNIT.read_text()))
    assert score <= MAX_EXPOSURE, f"systemd-analyze security: exposure {score} > {MAX_EXPOSURE}"


def test_exposure_measure_can_fail(tmp_path):
    """Without the sandbox the same measurement is far above the limit, so the test above means something."""
    bare = "\n".join(line for line in UNIT.read_text().splitlines()
                     if line.split("=")[0] in ("[Unit]", "Description", "[Service]", "Type", "ExecStart",
                                               "User", "[Install]", "WantedBy"))
    assert exposure(verifiable_copy(tmp_path, bare + "\n")) > 5.0
