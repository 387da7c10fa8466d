"""``edge-face doctor``: what works on this machine and what does not, one line per part.

A door that does not open is usually a missing camera cable, a user outside the ``gpio`` group, a key file with
the wrong owner or a model copied half-way. Each check here looks at one of those and answers ``ok``,
``warning`` or ``failed`` with a one-line reason a person can act on. A check never crashes the doctor: an
unexpected exception becomes a ``failed`` line. Nothing is moved: the relay is never driven, no camera setting
is changed, and the web port is only bound for a moment on the configured address.

When the edge-face service is running it holds the camera, the GPIO lines and the web port; the doctor then
reports them as held by the service instead of fighting it for them.
"""

from __future__ import annotations

import datetime as _dt
import errno
import importlib
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import config as _config
from .diskspace import free_bytes, human_size
from .errors import EdgeError

log = logging.getLogger(__name__)

OK, WARNING, FAILED = "ok", "warning", "failed"
SERVICE_NAME = "edge-face.service"
MIN_YEAR = 2025
DISK_FAILED_BYTES = 10 * 1024 * 1024     # less than this: the next database or log write may fail
CAMERA_FRAMES = 3


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # ok | warning | failed
    reason: str

    def line(self) -> str:
        return f"{self.status.upper():8} {self.name:9} {self.reason}"


def one_line(text: str, limit: int = 240) -> str:
    """First line of a message, shortened: doctor output is one line per check."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, EdgeError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


class Doctor:
    """Runs the checks for one configuration. The keyword options exist so tests can point at other places."""

    def __init__(self, cfg: _config.Config, *, config_path: str | os.PathLike | None = None,
                 config_error: str | None = None, now: Callable[[], float] = time.time,
                 dev_dir: str | os.PathLike = "/dev", command: Callable[..., subprocess.CompletedProcess] | None = None,
                 service_active: bool | None = None, picamera2_class=None, camera_timeout: float | None = None,
                 low_disk_mb: float | None = None):
        self.cfg = cfg
        self.low_disk_mb = float(cfg.store.low_disk_mb if low_disk_mb is None else low_disk_mb)
        self.config_path = config_path
        self.config_error = config_error
        self.now = now
        self.dev_dir = Path(dev_dir)
        self._command = command or _run_command
        self._service_active = service_active
        self.picamera2_class = picamera2_class
        self.camera_timeout = camera_timeout

    CHECKS = ("config", "service", "runtime", "camera", "gpio", "models", "key", "database", "disk", "web",
              "mqtt", "clock")

    def run(self, only: tuple[str, ...] | None = None) -> list[CheckResult]:
        results = []
        for name in only or self.CHECKS:
            method = getattr(self, f"check_{name}")
            try:
                status, reason = method()
            except Exception as exc:  # a doctor that crashes diagnoses nothing
                log.debug("check %s raised", name, exc_info=True)
                status, reason = FAILED, _describe_exception(exc)
            results.append(CheckResult(name, status, one_line(reason)))
        return results

    # -- the service itself -------------------------------------------------------------------------------------

    @property
    def service_active(self) -> bool:
        """True when systemd runs edge-face right now (it then owns the camera, the pins and the port)."""
        if self._service_active is None:
            self._service_active = False
            if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
                done = self._command(["systemctl", "is-active", "--quiet", SERVICE_NAME])
                self._service_active = done.returncode == 0
        return self._service_active

    def check_config(self):
        if self.config_error:
            return FAILED, self.config_error + " (the other checks use the built-in defaults)"
        where = str(self.config_path) if self.config_path else "built-in defaults (no configuration file)"
        return OK, f"{where} is valid"

    def check_service(self):
        if not (shutil.which("systemctl") and Path("/run/systemd/system").is_dir()):
            return WARNING, "systemd is not running here: cannot tell whether the service runs"
        if self.service_active:
            done = self._command(["systemctl", "show", "--property=StatusText", "--value", SERVICE_NAME])
            status = done.stdout.strip() if done.returncode == 0 else ""
            return OK, f"{SERVICE_NAME} is running" + (f": {status}" if status else "")
        done = self._command(["systemctl", "is-enabled", SERVICE_NAME])
        enabled = done.stdout.strip() or "not installed"
        return WARNING, f"{SERVICE_NAME} is not running ({enabled}); start it with: sudo systemctl start edge-face"

    # -- software ---------------------------------------------------------------------------------------------

    def check_runtime(self):
        """The libraries the service imports, with versions: on Bookworm a numpy 2 in the venv breaks picamera2."""
        found, problems = [], []
        for label, module in (("numpy", "numpy"), ("opencv", "cv2")):
            try:
                found.append(f"{label} {importlib.import_module(module).__version__}")
            except Exception as exc:
                problems.append(f"{label} cannot be imported ({_describe_exception(exc)})")
        cv2 = _import_quietly("cv2")
        if cv2 is not None and not hasattr(cv2, "FaceDetectorYN"):
            problems.append("this OpenCV has no FaceDetectorYN (needs opencv 4.8 or newer)")
        tflite = None
        for label, module in (("ai-edge-litert", "ai_edge_litert.interpreter"),
                              ("tflite-runtime", "tflite_runtime.interpreter")):
            if _import_quietly(module) is not None:
                tflite = label
                break
        if tflite:
            found.append(tflite)
        else:
            problems.append("no TFLite interpreter (pip install ai-edge-litert, or tflite-runtime with numpy<2)")
        if self.cfg.camera.source in ("auto", "picamera"):
            try:
                importlib.import_module("picamera2")
                found.append("picamera2")
            except Exception as exc:
                if self.cfg.camera.source == "picamera":
                    problems.append(f"picamera2 cannot be imported ({_describe_exception(exc)}); on Raspberry Pi "
                                    "OS: sudo apt install python3-picamera2, venv with --system-site-packages")
                else:
                    found.append("no picamera2")
        if problems:
            return FAILED, "; ".join(problems)
        return OK, ", ".join(found)

    # -- hardware ---------------------------------------------------------------------------------------------

    def check_camera(self):
        cam = self.cfg.camera
        if cam.source == "none":
            return WARNING, "camera.source = none: no camera is used (enrolment by upload only, the door never opens)"
        if self.service_active:
            return OK, "held by the running service (see the service line; stop it to test the camera here)"
        from . import camera as _camera

        timeout = self.camera_timeout or max(5.0, cam.frame_timeout_seconds * (CAMERA_FRAMES + 2))
        outcome: dict = {}

        def probe():
            source = None
            try:
                source = _camera.source_from_config(cam, picamera2_class=self.picamera2_class)
                if source is None:
                    outcome["result"] = (FAILED, self._no_camera_reason())
                    return
                source.open()
                shapes = [source.read().shape for _ in range(CAMERA_FRAMES)]
                h, w = shapes[-1][:2]
                outcome["result"] = (OK, f"{source.name}: {len(shapes)} frames of {w}x{h} delivered")
            except Exception as exc:
                outcome["result"] = (FAILED, f"{getattr(source, 'name', cam.source)}: {_describe_exception(exc)}")
            finally:
                if source is not None:
                    try:
                        source.close()
                    except Exception:
                        log.debug("camera close failed", exc_info=True)

        thread = threading.Thread(target=probe, name="doctor-camera", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return FAILED, f"{cam.source}: no frame within {timeout:.0f} s (camera stalled; check the cable)"
        return outcome["result"]

    def _no_camera_reason(self) -> str:
        videos = sorted(p.name for p in self.dev_dir.glob("video*"))
        picam = "picamera2 found no Pi camera" if _import_quietly("picamera2") else "picamera2 is not installed"
        devices = f"/dev has {', '.join(videos)}" if videos else "no /dev/video* device"
        return (f"no camera found ({picam}; OpenCV camera 0 does not open; {devices}): check the ribbon cable "
                "and camera.source")

    def check_gpio(self):
        door = self.cfg.door
        pins = [(label, getattr(door, key)) for key, label in _config.PIN_NAMES if getattr(door, key) is not None]
        pin_list = ", ".join(f"{label} GPIO{pin}" for label, pin in pins)
        from . import door as _door

        if door.pin_factory == "mock":
            return WARNING, f"door.pin_factory = mock: pins are simulated, no door moves ({pin_list})"
        if door.pin_factory == "auto" and not _door.on_a_raspberry_pi():
            return FAILED, ("no GPIO: this is not a Raspberry Pi (/proc/device-tree/model), so the pins would be "
                            "simulated and no door would move; set door.pin_factory = \"mock\" to develop here")
        chips = sorted(self.dev_dir.glob("gpiochip*"))
        if door.pin_factory in ("auto", "lgpio", "native") and not chips:
            return FAILED, "no /dev/gpiochip* device: the GPIO driver is not loaded"
        unusable = [c.name for c in chips if not os.access(c, os.R_OK | os.W_OK)]
        if chips and len(unusable) == len(chips):
            return FAILED, (f"{', '.join(unusable)} not readable and writable by this user: add it to the gpio "
                            "group (sudo usermod -aG gpio USER) or run as the service user")
        if self.service_active:
            return OK, f"held by the running service ({pin_list})"
        factory = _door.make_pin_factory(door.pin_factory)
        if factory is None:
            from gpiozero import Device

            factory = Device._default_pin_factory()
        try:
            for _label, pin in pins:
                factory.pin(pin)  # validates the number for this board; does not claim or drive the line
            board = getattr(getattr(factory, "board_info", None), "model", "")
        finally:
            factory.close()
        where = f"{type(factory).__name__}" + (f" on a Raspberry Pi {board}" if board else "")
        return OK, f"{where}: {pin_list}"

    # -- files ------------------------------------------------------------------------------------------------

    def check_models(self):
        """The configured embedder and the face detector, hash-checked against the manifest."""
        from .recognition import models as _models

        models_dir = self.cfg.models_dir
        manifest = _models.load_manifest(models_dir)
        wanted = [_models.model_entry(manifest, self.cfg.recognition.model)]
        wanted += [m for m in manifest["models"] if m.get("kind") == "detector"]
        names = [_models.verified_path(models_dir, entry).name for entry in wanted]
        return OK, f"{', '.join(_models.versioned_id(e) for e in wanted)} in {models_dir}: sha256 verified " \
                   f"({', '.join(names)})"

    def check_key(self):
        store = self.cfg.store
        from . import keys as _keys

        if store.key_source == "credential" and not os.environ.get("CREDENTIALS_DIRECTORY"):
            return self._check_credstore(store.credential_name)
        source = _keys.key_source_for(self.cfg)
        path = source.path
        if not path.exists():
            return FAILED, source.missing_message()
        problems = _private_file_problems(path)
        ring = _keys.KeyRing(source)  # reads and validates; never prints a key
        what = f"{source.description} {path} ({len(ring)} key{'s' if len(ring) != 1 else ''}, " \
               f"mode {_mode(path):04o}, owner {_owner(path)})"
        if problems and store.key_source != "credential":
            return FAILED, f"{what}: {problems}"
        return OK, f"{what} readable"

    def _check_credstore(self, name: str):
        for folder in (Path("/etc/credstore.encrypted"), Path("/etc/credstore")):
            path = folder / name
            try:
                present = path.is_file()
            except PermissionError:
                present = False
            if present:
                problems = _private_file_problems(path)
                if problems:
                    return FAILED, f"credential {path}: {problems}"
                return OK, (f"credential {path} is there; systemd hands it to the service (the doctor cannot "
                            "read it outside the unit)")
        return WARNING, (f"store.key_source = credential: no {name} in /etc/credstore; the doctor cannot see "
                         "systemd credentials outside the unit (run it as root, or under the unit)")

    def check_database(self):
        state = self.cfg.state_dir
        if not state.is_dir():
            return FAILED, f"state directory {state} does not exist: run `edge-face db init` (as the service user)"
        mode = _mode(state)
        if mode & 0o077:
            return FAILED, f"state directory {state} has mode {mode:04o}: others can look in; chmod 700 {state}"
        if not os.access(state, os.R_OK | os.W_OK | os.X_OK):
            return FAILED, f"state directory {state} is not writable by this user (owner {_owner(state)})"
        exposed = sorted(p.name for p in state.iterdir() if p.is_file() and _mode(p) & 0o077)
        if exposed:
            return FAILED, f"{', '.join(exposed)} in {state} readable by others: chmod 600 them"
        from .store import DB_FILE_NAME, Store

        db_file = state / DB_FILE_NAME
        if not db_file.exists():
            return FAILED, f"no database {db_file}: run `edge-face db init` as the service user"
        if self.cfg.store.key_source == "credential" and not os.environ.get("CREDENTIALS_DIRECTORY"):
            return WARNING, (f"{db_file} is private; it cannot be opened here because its key is a systemd "
                             "credential (only the unit receives it)")
        store = Store.open(self.cfg)
        try:
            users = len(store.users())
            revision = store.revision
        finally:
            store.close()
        return OK, f"database in {state} opens: {users} user{'s' if users != 1 else ''}, revision {revision}"

    def check_disk(self):
        path = self.cfg.state_dir
        free = free_bytes(path)
        text = f"{human_size(free)} free on the file system of {path}"
        if free < DISK_FAILED_BYTES:
            return FAILED, text + ": the database and access log cannot be saved safely; free some space"
        if free < self.low_disk_mb * 1024 * 1024:
            return WARNING, text + f": running low (warning below {self.low_disk_mb:g} MiB)"
        return OK, text

    # -- network and time -------------------------------------------------------------------------------------

    def check_web(self):
        web = self.cfg.web
        if not web.enabled:
            return OK, "admin page disabled (web.enabled = false)"
        url = f"{'https' if web.https else 'http'}://{web.host}:{web.port}"
        try:
            infos = socket.getaddrinfo(web.host, web.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            return FAILED, f"web.host = {web.host!r} does not resolve ({exc.strerror})"
        family, kind, proto, _name, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    if self.service_active:
                        return OK, f"{url} is served by the running service"
                    return FAILED, (f"port {web.port} on {web.host} is in use by another program: stop it or "
                                    "change web.port")
                if exc.errno == errno.EACCES:
                    return FAILED, (f"port {web.port} needs privileges the service does not have: use a port "
                                    "above 1023 (web.port)")
                if exc.errno == errno.EADDRNOTAVAIL:
                    return FAILED, f"web.host = {web.host!r} is not an address of this machine"
                return FAILED, f"cannot bind {web.host}:{web.port}: {exc.strerror}"
        return OK, f"{url} is free to bind"

    def check_mqtt(self):
        mqtt = self.cfg.mqtt
        if not mqtt.enabled:
            return OK, "MQTT disabled (mqtt.enabled = false)"
        from .mqtt import probe   # here: a door without MQTT never loads paho
        from .mqtt.settings import check_files

        warnings = check_files(mqtt)
        try:
            text = probe.check(mqtt)
        except EdgeError as exc:
            return FAILED, str(exc)
        if warnings:
            return WARNING, f"{text}; {warnings[0]}"
        return OK, f"{text}; Home Assistant discovery under {mqtt.discovery_prefix}/, topics under {mqtt.topic}/"

    def check_clock(self):
        now = _dt.datetime.fromtimestamp(self.now(), tz=_dt.timezone.utc)
        if now.year < MIN_YEAR:
            return FAILED, (f"the clock says {now:%Y-%m-%d %H:%M} UTC: the Pi has no battery clock and has not "
                            "synchronised yet; access-log times and TLS certificates depend on it (check NTP)")
        stamp = f"{now:%Y-%m-%d %H:%M} UTC"
        if not shutil.which("timedatectl"):
            return OK, f"{stamp} (timedatectl not available: NTP state unknown)"
        done = self._command(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
        answer = done.stdout.strip()
        if done.returncode != 0 or answer not in ("yes", "no"):
            return WARNING, f"{stamp}; NTP state unknown (timedatectl: {one_line(done.stderr) or 'no answer'})"
        if answer == "no":
            return WARNING, f"{stamp}; not synchronised with NTP yet (timedatectl timesync-status)"
        return OK, f"{stamp}, synchronised with NTP"


def _run_command(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


def _import_quietly(module: str):
    try:
        return importlib.import_module(module)
    except Exception:
        return None


def _private_file_problems(path: Path) -> str:
    """'' when only the owner can read the file; otherwise what is wrong and the fix."""
    mode = _mode(path)
    if mode & 0o077:
        return f"mode {mode:04o} lets others read it: chmod 600 {path}"
    if not os.access(path, os.R_OK):
        return f"not readable by this user (owner {_owner(path)}): run as the service user or root"
    return ""


def exit_code(results: list[CheckResult]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return 1 if any(r.status == FAILED for r in results) else 0


def render_text(results: list[CheckResult]) -> str:
    failed = sum(r.status == FAILED for r in results)
    warned = sum(r.status == WARNING for r in results)
    summary = ("everything works" if not failed and not warned
               else f"{failed} failed, {warned} warning{'s' if warned != 1 else ''}")
    return "\n".join([r.line() for r in results] + [f"edge-face doctor: {summary}"])


def render_json(results: list[CheckResult]) -> str:
    return json.dumps({"ok": exit_code(results) == 0, "checks": [asdict(r) for r in results]}, indent=2)
