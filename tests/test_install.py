"""scripts/install.sh in --root mode: the tree it lays out, its modes, idempotence, models, credential, uninstall.

--root skips apt, useradd, chown and systemctl start (it records them), and --no-venv skips the virtual
environment, so these tests are fast and touch nothing outside tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from conftest import REPO_ROOT, missing
from edge import config as edge_config

SCRIPT = REPO_ROOT / "scripts" / "install.sh"
EXAMPLE = REPO_ROOT / "config" / "edge-face.example.toml"
UNIT = REPO_ROOT / "systemd" / "edge-face.service"


def install(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    done = subprocess.run(["bash", str(SCRIPT), "--root", str(root), "--no-venv", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode, sha256 of the content or the link target) for everything under root."""
    listing = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            digest = "-> " + os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest = "dir"
        listing[str(path.relative_to(root))] = (stat.filemode(st.st_mode), digest)
    return listing


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def write_os_release(root: Path, codename: str) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text(f'ID=debian\nVERSION_CODENAME={codename}\n')


@pytest.mark.parametrize("script", sorted((REPO_ROOT / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_shellcheck_passes(script):
    tool = shutil.which("shellcheck")
    if not tool:
        missing("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run([tool, "--severity=style", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_root_install_lays_out_files_with_safe_modes(tmp_path):
    root = tmp_path / "root"
    done = install(root, "--no-models")
    assert (root / "etc/systemd/system/edge-face.service").read_bytes() == UNIT.read_bytes()
    assert (root / "etc/edge-face/config.toml").read_bytes() == EXAMPLE.read_bytes()
    assert (root / "opt/edge-face/edge-face.example.toml").read_bytes() == EXAMPLE.read_bytes()
    expected_modes = {"etc/edge-face": 0o750, "etc/edge-face/config.toml": 0o640, "var/lib/edge-face": 0o700,
                      "etc/systemd/system/edge-face.service": 0o644, "opt/edge-face": 0o755,
                      "opt/edge-face/models": 0o755, "usr/local/bin/edge-face": 0o755}
    assert {p: mode(root / p) for p in expected_modes} == expected_modes
    wrapper = (root / "usr/local/bin/edge-face").read_text()
    assert "exec /opt/edge-face/venv/bin/edge-face --config /etc/edge-face/config.toml" in wrapper
    # No key is written unless asked for: key_source = file creates it with `edge-face db init`.
    assert not (root / "etc/credstore").exists()
    assert not (root / "etc/systemd/system/edge-face.service.d").exists()
    # The system changes are reported, not made.
    for action in ("apt-get install", "useradd", "usermod --append --groups video,gpio edge-face"):
        assert "skipped (--root): " in done.stdout and action in done.stdout, action
    if shutil.which("systemctl"):
        link = root / "etc/systemd/system/multi-user.target.wants/edge-face.service"
        assert os.readlink(link) == "/etc/systemd/system/edge-face.service"
    # The installed configuration is valid as it stands.
    cfg = edge_config.load(root / "etc/edge-face/config.toml")
    assert cfg.state_dir == Path("/var/lib/edge-face") and cfg.models_dir == Path("/opt/edge-face/models")


def test_running_twice_changes_nothing(tmp_path):
    root = tmp_path / "root"
    install(root, "--no-models", "--credential")
    first = tree(root)
    again = install(root, "--no-models", "--credential")
    assert tree(root) == first
    assert "installed " not in again.stdout and "created " not in again.stdout, again.stdout


def test_modes_are_repaired_and_the_configuration_kept(tmp_path):
    root = tmp_path / "root"
    install(root, "--no-models")
    conf = root / "etc/edge-face/config.toml"
    conf.write_text(conf.read_text().replace("relay_pin = 17", "relay_pin = 16"))
    conf.chmod(0o666)
    (root / "var/lib/edge-face").chmod(0o755)
    done = install(root, "--no-models")
    assert "relay_pin = 16" in conf.read_text(), "an administrator's configuration must never be overwritten"
    assert mode(conf) == 0o640 and mode(root / "var/lib/edge-face") == 0o700
    assert "kept /etc/edge-face/config.toml" in done.stdout


def test_credential_mode_stores_a_root_only_key_and_adds_load_credential(tmp_path):
    root = tmp_path / "root"
    install(root, "--no-models", "--credential")
    cfg = edge_config.load(root / "etc/edge-face/config.toml")
    assert cfg.store.key_source == "credential"
    key = root / "etc/credstore" / cfg.store.credential_name
    assert mode(root / "etc/credstore") == 0o700 and mode(key) == 0o400
    Fernet(key.read_text().strip().encode())  # a usable Fernet key, the format edge.keys reads
    dropin = (root / "etc/systemd/system/edge-face.service.d/credential.conf").read_text()
    assert f"LoadCredential={cfg.store.credential_name}:/etc/credstore/{cfg.store.credential_name}" in dropin
    before = key.read_bytes()
    install(root, "--no-models", "--credential")
    assert key.read_bytes() == before, "the key must never be replaced"


def test_credential_refused_when_the_existing_configuration_uses_a_key_file(tmp_path):
    root = tmp_path / "root"
    install(root, "--no-models")
    done = install(root, "--no-models", "--credential", check=False)
    assert done.returncode != 0 and 'key_source = "file"' in done.stderr
    assert not (root / "etc/credstore").exists()


def test_release_decides_the_dependency_pins(tmp_path):
    bookworm, trixie = tmp_path / "bookworm", tmp_path / "trixie"
    write_os_release(bookworm, "bookworm")
    write_os_release(trixie, "trixie")
    install(bookworm, "--no-models")
    install(trixie, "--no-models")
    pins_bookworm = (bookworm / "opt/edge-face/constraints.txt").read_text().splitlines()
    pins_trixie = (trixie / "opt/edge-face/constraints.txt").read_text().splitlines()
    # Bookworm's apt numpy is 1.x: numpy 2 in the venv would break apt's picamera2.
    assert "numpy<2" in pins_bookworm and "opencv-python-headless>=4.8,<4.11" in pins_bookworm
    assert "numpy<2" not in pins_trixie and "opencv-python-headless>=4.8" in pins_trixie


def test_camera_stack_is_installed_by_default(tmp_path):
    done = install(tmp_path / "root", "--no-models")
    apt_line = next(line for line in done.stdout.splitlines() if "apt-get install" in line)
    assert "python3-picamera2" in apt_line and "python3-libcamera" in apt_line
    assert "--no-camera-stack" not in done.stdout


def test_apt_brings_setuptools_for_the_quick_build(tmp_path):
    """From Trixie on python3-pip does not bring python3-setuptools, and without it the --no-build-isolation
    install prints a traceback before falling back to a slow isolated build."""
    done = install(tmp_path / "root", "--no-models", "--no-camera-stack")
    apt_line = next(line for line in done.stdout.splitlines() if "apt-get install" in line)
    assert "python3-setuptools" in apt_line.split()


def test_no_camera_stack_leaves_picamera2_out_and_says_so(tmp_path):
    """Plain Debian (a PC, the emulated root of scripts/pi-check.sh) has no Raspberry Pi archive."""
    done = install(tmp_path / "root", "--no-models", "--no-camera-stack")
    apt_line = next(line for line in done.stdout.splitlines() if "apt-get install" in line)
    assert "picamera2" not in apt_line and "libcamera" not in apt_line
    assert "python3-numpy" in apt_line and "python3-venv" in apt_line
    assert "skipped (--no-camera-stack): python3-picamera2 python3-libcamera" in done.stdout
    assert "camera.source = opencv or folder" in done.stdout


def test_help_names_every_option():
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--credential", "--no-camera-stack", "--models DIR", "--uninstall", "--purge", "--root DIR"):
        assert option in done.stdout, option
    assert done.stdout.rstrip().endswith("modes and owners are re-applied."), "the usage text is cut short"


def make_models(folder: Path) -> Path:
    """A small models folder with real files and their real sha256 (the copy logic does not care about size)."""
    folder.mkdir(parents=True)
    entries = []
    for mid, name, data in (("facenet-int8", "facenet_int8.tflite", b"tflite bytes"),
                            ("yunet", "face_detection_yunet_2023mar.onnx", b"onnx bytes")):
        (folder / name).write_bytes(data)
        entries.append({"id": mid, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "models": entries}))
    return folder


def test_models_are_copied_after_their_hashes_check(tmp_path):
    root, models = tmp_path / "root", make_models(tmp_path / "models")
    install(root, "--models", str(models))
    target = root / "opt/edge-face/models"
    for name in ("manifest.json", "facenet_int8.tflite", "face_detection_yunet_2023mar.onnx"):
        assert (target / name).read_bytes() == (models / name).read_bytes()
        assert mode(target / name) == 0o644
    first = tree(root)
    install(root, "--models", str(models))
    assert tree(root) == first


def test_a_corrupt_model_is_refused_and_nothing_copied(tmp_path):
    root, models = tmp_path / "root", make_models(tmp_path / "models")
    (models / "facenet_int8.tflite").write_bytes(b"half a file")
    done = install(root, "--models", str(models), check=False)
    assert done.returncode != 0 and "facenet_int8.tflite does not match its sha256" in done.stderr
    assert list((root / "opt/edge-face/models").iterdir()) == []


def test_uninstall_keeps_data_and_purge_removes_it(tmp_path):
    root = tmp_path / "root"
    install(root, "--no-models", "--credential")
    database = root / "var/lib/edge-face/edge-face.db"
    database.write_bytes(b"encrypted")
    install(root, "--uninstall")
    assert not (root / "etc/systemd/system/edge-face.service").exists()
    assert not (root / "etc/systemd/system/edge-face.service.d").exists()
    assert not (root / "opt/edge-face").exists() and not (root / "usr/local/bin/edge-face").exists()
    assert database.read_bytes() == b"encrypted"
    assert (root / "etc/edge-face/config.toml").exists() and (root / "etc/credstore/edge-face-key").exists()
    install(root, "--purge")
    assert not (root / "var/lib/edge-face").exists() and not (root / "etc/edge-face").exists()
    assert not (root / "etc/credstore/edge-face-key").exists()


def test_verify_passes_on_the_installed_tree(tmp_path):
    """The unit and drop-in as installed, with ExecStart rewritten into the tree (it has no venv here)."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        missing("systemd-analyze not installed (apt-get install systemd)")
    root = tmp_path / "root"
    install(root, "--no-models", "--credential")
    exe = root / "opt/edge-face/venv/bin/edge-face"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    check = tmp_path / "check"
    shutil.copytree(root / "etc/systemd/system", check, symlinks=True)
    unit = check / "edge-face.service"
    unit.write_text(unit.read_text().replace("/opt/edge-face/", f"{root}/opt/edge-face/"))
    done = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, cwd=check)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["--root"]])
def test_bad_arguments_are_refused(tmp_path, args):
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "error:" in done.stderr
