"""The one validated place for settings.

The service reads a single TOML file (``/etc/edge-face/config.toml`` under systemd). Every key has a type, a
default and, where it matters, a range or a set of allowed values; :func:`load` checks all of them and raises a
:class:`~edge.errors.ConfigError` that names the key and says what is allowed. Unknown keys are errors too,
because a misspelt ``relay_pin`` must not silently leave the default pin in charge of a door.

Settings that an administrator changes at run time (security level, unlock time, decision policy, lockout) are kept
in the encrypted store; the values here are their first defaults.

**One table.** Every setting is one ``_opt(...)`` row in a section dataclass below (type, default, range or
choices, help, and for run-time settings ``runtime=True`` and a ``label``). :data:`SETTINGS` is that table as
:class:`Setting` rows; the TOML check, the store's ``update_settings``, :class:`edge.decision.Policy`'s defaults,
the settings page and the test of ``config/edge-face.example.toml`` all derive from it. To add a setting, add a
row (and its commented line in the example); to add a section, add a dataclass and one field of :class:`Config`.
Rules between settings live in :func:`check_runtime` (run-time) and :func:`_check_cross_field` (the file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, SettingError

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS_DIR = PACKAGE_ROOT.parent / "models"
DEFAULT_CONFIG_PATH = Path("/etc/edge-face/config.toml")


def _opt(default: Any, *, choices: tuple[str, ...] | None = None, min: float | None = None,
         max: float | None = None, doc: str = "", nullable: bool = False, label: str = "",
         runtime: bool = False) -> Any:
    """One row of the settings table, written as a dataclass field so that ``cfg.door.relay_pin`` stays typed.

    ``nullable`` allows the string "none" (e.g. an unconnected pin); ``runtime`` marks a setting an administrator
    changes on the admin page (kept in the store; the value here is its first default); ``label`` is what the
    settings page calls it (required for run-time settings)."""
    meta = {"choices": choices, "min": min, "max": max, "doc": doc, "nullable": nullable, "label": label,
            "runtime": runtime}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PathsConfig:
    state_dir: str = _opt("/var/lib/edge-face", doc="Database, access log, key file, TLS certificate.")
    models_dir: str = _opt(str(DEFAULT_MODELS_DIR), doc="Folder with manifest.json and the *.tflite files.")


@dataclass(frozen=True)
class RecognitionConfig:
    model: str = _opt("facenet-int8", doc="Model id from models/manifest.json.")
    num_threads: int = _opt(0, min=0, max=64, doc="TFLite threads; 0 means all cores.")
    detector_score: float = _opt(0.8, min=0.1, max=0.99, doc="Minimum YuNet face score.")
    flip_average: bool = _opt(True, doc="Average the embedding of the face and its mirror image.")
    detect_max_side: int = _opt(1280, min=160, max=8192,
                                doc="Photographs (uploads, CLI): detect on a copy downscaled to this side.")
    frame_detect_side: int = _opt(320, min=160, max=8192,
                                  doc="Camera frames: detect at this side; a door's faces are near and large.")


@dataclass(frozen=True)
class CameraConfig:
    source: str = _opt("auto", choices=("auto", "picamera", "opencv", "folder", "none"),
                       doc="auto: Picamera2, else OpenCV device 0, else none.")
    device: str = _opt("0", doc="OpenCV source: camera index, video file or stream URL.")
    folder: str = _opt("", doc="Folder of images for source = folder.")
    width: int = _opt(640, min=160, max=4096)
    height: int = _opt(480, min=120, max=4096)
    fps: float = _opt(15.0, min=0.5, max=120.0)
    loop: bool = _opt(True, doc="Replay a folder or video file from the start when it ends.")
    frame_timeout_seconds: float = _opt(2.0, min=0.1, max=60.0, doc="A frame later than this is a stall.")
    retry_initial_seconds: float = _opt(1.0, min=0.05, max=60.0)
    retry_max_seconds: float = _opt(30.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class DoorConfig:
    pin_factory: str = _opt("auto", choices=("auto", "mock", "lgpio", "rpigpio", "pigpio", "native"),
                            doc="auto: gpiozero's own choice on a Pi, mock elsewhere.")
    relay_pin: int = _opt(17, min=0, max=53)
    relay_active_high: bool = _opt(True)
    max_unlock_seconds: float = _opt(10.0, min=0.5, max=120.0,
                                     doc="Hard ceiling: the relay is released after this whatever happens.")
    green_led_pin: int | None = _opt(27, min=0, max=53, nullable=True)
    red_led_pin: int | None = _opt(22, min=0, max=53, nullable=True)
    buzzer_pin: int | None = _opt(23, min=0, max=53, nullable=True)
    exit_button_pin: int | None = _opt(24, min=0, max=53, nullable=True)
    door_contact_pin: int | None = _opt(25, min=0, max=53, nullable=True)
    alarm_pin: int | None = _opt(5, min=0, max=53, nullable=True)
    held_open_seconds: float = _opt(30.0, min=1.0, max=3600.0)


# The door's pin settings and what a person calls them (config errors, doctor, config check).
PIN_NAMES = (("relay_pin", "relay"), ("green_led_pin", "green LED"), ("red_led_pin", "red LED"),
             ("buzzer_pin", "buzzer"), ("exit_button_pin", "exit button"), ("door_contact_pin", "door contact"),
             ("alarm_pin", "alarm"))


@dataclass(frozen=True)
class DecisionConfig:
    """First defaults of the run-time settings; the store's values win once saved."""

    # The threshold follows from the security level and the number of people enrolled (edge.recognition.security,
    # from the different-person score distribution the models build measured on LFW DevTrain): a stranger is
    # compared with every enrolled person, so each comparison may pass with at most 1/(security_level x people).
    # scripts/bench_door.py (facenet-int8, LFW View 1, 413 people enrolled with 3 photographs each, 4,198 stranger
    # attempts; the door judges tracks in the centred space, 3 of 5 frames, margin 0.10): 1 in 100,000 -> 0.908,
    # 33% of two-photograph attempts granted, 0 strangers; 1 in 10,000 -> 0.821, 86%, 0; 1 in 1,000 -> 0.734,
    # 100%, 5 strangers (the rate the level promises). 10 people: 1 in 100,000 -> 0.767, 96.6% granted, 0 of
    # 254,437 strangers.
    security_level: int = _opt(100_000, min=100, max=1_000_000_000, runtime=True,
                               label="Security level: at most 1 stranger let in per this many attempts",
                               doc="The door's threshold follows from it and from the number of people enrolled "
                                   "(higher is stricter; residents are refused more often).")
    threshold: float | None = _opt(None, min=-1.0, max=1.0, nullable=True, runtime=True,
                                   label="Match threshold override (cosine similarity)",
                                   doc="Leave empty to follow the security level; a value here overrides it "
                                       "(higher is stricter).")
    unlock_seconds: float = _opt(3.0, min=0.5, max=60.0, runtime=True, label="Unlock time (seconds)",
                                 doc="How long the relay stays open after a grant.")
    frames_required: int = _opt(3, min=1, max=30, runtime=True, label="Matching frames required (k)",
                                doc="k matching frames ...")
    frames_considered: int = _opt(5, min=1, max=60, runtime=True, label="Frames considered (n)",
                                  doc="... among the last n frames ...")
    window_seconds: float = _opt(2.0, min=0.1, max=30.0, runtime=True, label="Time window (seconds)",
                                 doc="... within this time.")
    margin: float = _opt(0.10, min=0.0, max=1.0, runtime=True, label="Margin over the second-best person",
                         doc="Lead needed over the next most similar person.")
    aggregation: str = _opt("mean", choices=("mean", "best"),
                            doc="Per-user score: mean = against the user's mean template; best = best template.")
    min_face_px: int = _opt(80, min=20, max=2000, doc="Smallest face side (pixels) considered.")
    cooldown_seconds: float = _opt(5.0, min=0.0, max=600.0, runtime=True, label="Cooldown (seconds)",
                                   doc="Pause after a grant before the next decision.")
    lockout_after: int = _opt(5, min=1, max=1000, runtime=True, label="Lockout after denials",
                              doc="Denials of one face before it is locked out.")
    lockout_seconds: float = _opt(60.0, min=0.0, max=86400.0, runtime=True, label="Lockout time (seconds)",
                                  doc="How long a lockout lasts.")


@dataclass(frozen=True)
class LivenessConfig:
    """Is the face at the door a live person or a copy (print, screen)? See docs/liveness.md."""

    mode: str = _opt("passive", choices=("off", "passive", "strict"),
                     doc="off: recognition alone (a photograph of a resident opens the door); passive: the face "
                         "must blink, move its mouth or eyes or turn, and must not show a screen or paper outline; "
                         "strict: it must also blink twice when the LEDs ask (defeats replayed video).")
    window_seconds: float = _opt(3.0, min=1.0, max=30.0,
                                 doc="A recognised face not confirmed live this long after it appeared is refused "
                                     "(strict mode uses at least 6).")
    illuminator_pin: int | None = _opt(None, min=0, max=53, nullable=True,
                                       doc="Optional LED (white or 850 nm) beside the camera, pulsed in a random "
                                           "pattern: a live face's shading follows it, a print's is flat, a "
                                           "screen barely follows (docs/liveness.md). none: not fitted.")


@dataclass(frozen=True)
class StoreConfig:
    key_source: str = _opt("file", choices=("file", "credential", "passphrase"),
                           doc="file: state_dir/key; credential: $CREDENTIALS_DIRECTORY; passphrase: derived.")
    key_file: str = _opt("", doc="Key file; empty = <state_dir>/db.key.")
    credential_name: str = _opt("edge-face-key")
    passphrase_file: str = _opt("", doc="File holding the passphrase when key_source = passphrase.")
    log_max_bytes: int = _opt(1_048_576, min=4096, max=1 << 30)
    log_keep: int = _opt(5, min=1, max=100)
    low_disk_mb: float = _opt(200.0, min=0.0, max=1_000_000.0,
                              doc="Warn (doctor, dashboard) when less than this many MiB are free.")
    log_pending_events: int = _opt(1000, min=0, max=100_000,
                                   doc="Events kept in memory while the disk is full (0: none).")
    face_days: float = _opt(30.0, min=0.0, max=3650.0,
                            doc="Keep the face thumbnail of each door decision this many days; 0 keeps none.")
    face_max_mb: float = _opt(50.0, min=0.0, max=100000.0, doc="Disk budget for face thumbnails; oldest go first.")


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = _opt(True)
    host: str = _opt("127.0.0.1")
    port: int = _opt(8443, min=0, max=65535, doc="0 picks a free port (used by tests).")
    https: bool = _opt(True)
    max_upload_mb: float = _opt(10.0, min=0.1, max=200.0)
    session_idle_minutes: float = _opt(30.0, min=1.0, max=1440.0)
    session_absolute_hours: float = _opt(12.0, min=0.1, max=720.0)
    login_max_failures: int = _opt(5, min=1, max=100)
    login_lock_minutes: float = _opt(15.0, min=0.1, max=1440.0)
    signup: str = _opt("open", choices=("open", "invite", "closed"),
                       doc="Who may create an account on the page (the first account, the admin, always can).")
    signups_per_hour: int = _opt(3, min=1, max=1000, doc="New accounts per client address and hour.")
    max_pending_accounts: int = _opt(20, min=1, max=10000, doc="Sign-ups pause while this many wait for approval.")


@dataclass(frozen=True)
class MqttConfig:
    """The home's MQTT broker and Home Assistant discovery (:mod:`edge.mqtt`); off by default. Derived values
    (the port for TLS, the default topic and client id from the host name) are properties."""

    enabled: bool = _opt(False, doc="Publish the door to an MQTT broker (Home Assistant discovery).")
    host: str = _opt("localhost", doc="Broker host name or address.")
    port: int = _opt(0, min=0, max=65535, doc="Broker port; 0 = 1883, or 8883 with tls.")
    tls: bool = _opt(False, doc="Connect with TLS, checking the broker's certificate.")
    ca_file: str = _opt("", doc="CA certificate (PEM) for tls; empty = the system's authorities.")
    cert_file: str = _opt("", doc="Client certificate (PEM) for brokers that ask for one; with key_file.")
    key_file: str = _opt("", doc="Client key (PEM) for cert_file; mode 0600.")
    username: str = _opt("", doc="Broker user name; empty = anonymous.")
    password_file: str = _opt("", doc="File whose first line is the broker password (never the password here).")
    client_id: str = _opt("", doc="MQTT client id; empty = edge-face-<hostname>. Home Assistant's unique ids "
                                  "derive from it, so keep it stable.")
    base_topic: str = _opt("", doc="Topic prefix of the door's states and events; empty = edge-face/<hostname>.")
    discovery_prefix: str = _opt("homeassistant", doc="Home Assistant's discovery prefix.")
    device_name: str = _opt("", doc="The device's name in Home Assistant; empty = Door <hostname>.")
    allow_remote_unlock: bool = _opt(False, doc="Let Home Assistant's lock entity unlock the door (with code).")
    code: str = _opt("", doc="The lock code Home Assistant asks for; required (4+ characters) for remote unlock.")
    unlock_attempts_per_minute: int = _opt(5, min=1, max=60,
                                           doc="Remote unlock commands accepted per minute, right or wrong.")
    publish_faces: bool = _opt(False, doc="Publish the latest face crop as a camera entity (personal data).")
    queue_size: int = _opt(1000, min=10, max=100_000,
                           doc="Events kept while the broker is away; then the oldest are dropped.")
    keepalive_seconds: int = _opt(30, min=5, max=3600, doc="MQTT keep-alive.")
    reconnect_min_seconds: float = _opt(1.0, min=0.05, max=600.0, doc="First wait before reconnecting ...")
    reconnect_max_seconds: float = _opt(60.0, min=0.1, max=3600.0, doc="... doubling up to this.")

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"edge-face-{_hostname()}"

    @property
    def topic(self) -> str:
        return self.base_topic or f"edge-face/{_hostname()}"

    @property
    def node_id(self) -> str:
        """Home Assistant's node id: ``[a-zA-Z0-9_-]`` only, stable across restarts (from the client id)."""
        return re.sub(r"[^a-zA-Z0-9_-]+", "_", self.effective_client_id).strip("_") or "door"

    @property
    def name(self) -> str:
        return self.device_name or f"Door {_hostname()}"

    @property
    def broker(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.broker_port}"

    def read_password(self) -> str | None:
        """The password file's first line (``None`` without a file); ConfigError if it cannot be read."""
        if not self.password_file:
            return None
        path = Path(self.password_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise SettingError("mqtt.password_file", f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingError("mqtt.password_file",
                               f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not lines or not lines[0]:
            raise SettingError("mqtt.password_file", f"{path} is empty; put the broker password on its first line")
        return lines[0]


def _hostname() -> str:
    return socket.gethostname().split(".")[0] or "door"


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    names: bool = _opt(False, doc="Put user names in the journal (default: user ids only).")


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    door: DoorConfig = field(default_factory=DoorConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    web: WebConfig = field(default_factory=WebConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.paths.state_dir)

    @property
    def models_dir(self) -> Path:
        return Path(self.paths.models_dir)

    @property
    def key_file(self) -> Path:
        return Path(self.store.key_file) if self.store.key_file else self.state_dir / "db.key"

    def replace(self, section: str, **values) -> "Config":
        """A copy with some keys of one section changed (validated like the file)."""
        raw = to_dict(self)
        raw[section].update(values)
        return from_dict(raw)


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: everything the TOML check, the store, the settings page and the example
    configuration need to know about a key. Built from the section dataclasses above (:data:`SETTINGS`)."""

    section: str
    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    label: str = ""
    help: str = ""
    runtime: bool = False

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def check(self, value: Any, *, key: str | None = None) -> Any:
        """The value converted to this setting's type, or SettingError naming ``key`` (default: section.name)."""
        key = key or self.key
        if self.nullable and (value is None or (isinstance(value, str) and value.lower() == "none")):
            return None
        extra = ' or "none"' if self.nullable else ""
        if self.type is bool:
            if not isinstance(value, bool):
                raise SettingError(key, f"must be true or false (got {value!r})")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingError(key, f"must be a whole number{extra} (got {value!r})")
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SettingError(key, f"must be a number{extra} (got {value!r})")
            value = float(value)
        elif self.type is str:
            if isinstance(value, int) and not isinstance(value, bool) and self.name == "device":
                value = str(value)
            if not isinstance(value, str):
                raise SettingError(key, f"must be a string (got {value!r})")
        if self.choices and value not in self.choices:
            raise SettingError(key, f"must be one of {', '.join(self.choices)} (got {value!r})")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise SettingError(key, f"must be between {self.min} and {self.max} (got {value!r})")
        return value

    def parse(self, text: str, *, key: str | None = None) -> Any:
        """A value typed into a form: "" is "none" for a nullable setting; SettingError says what to type."""
        text = text.strip()
        if self.nullable and text in ("", "none"):
            return None
        if self.type in (int, float):
            try:
                number = self.type(text)
            except ValueError:
                raise SettingError(key or self.name, "Enter a whole number." if self.type is int
                                   else "Enter a number, such as 0.75.") from None
            return self.check(number, key=key)
        if self.type is bool:
            return self.check(text.lower() in ("1", "true", "yes", "on"), key=key)
        return self.check(text, key=key)


def _section_types() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _type_of(f: dataclasses.Field) -> type:
    annotation = str(f.type).replace(" | None", "")
    return {"int": int, "float": float, "bool": bool, "str": str}[annotation]


def _build_table() -> tuple[Setting, ...]:
    rows = []
    for section, cls in _section_types().items():
        for f in dataclasses.fields(cls):
            m = f.metadata
            rows.append(Setting(section=section, name=f.name, type=_type_of(f), default=f.default, min=m["min"],
                                max=m["max"], choices=m["choices"], nullable=m["nullable"], label=m["label"],
                                help=m["doc"], runtime=m["runtime"]))
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _build_table()
"""Every setting, in file order: the one table the rest of the code derives from."""

RUNTIME_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.runtime)
"""Settings an administrator changes at run time; the store keeps them by bare name (``threshold``)."""

_BY_KEY = {s.key: s for s in SETTINGS}
_RUNTIME_BY_NAME = {s.name: s for s in RUNTIME_SETTINGS}
assert len(_RUNTIME_BY_NAME) == len(RUNTIME_SETTINGS), "run-time setting names must be unique across sections"
assert all(s.label for s in RUNTIME_SETTINGS), "every run-time setting needs a label for the settings page"


def setting(key: str) -> Setting:
    """The row for ``section.name`` (or the bare name of a run-time setting)."""
    row = _BY_KEY.get(key) or _RUNTIME_BY_NAME.get(key)
    if row is None:
        raise SettingError(key, "unknown setting")
    return row


def runtime_defaults(cfg: "Config") -> dict[str, Any]:
    """The run-time settings' first defaults, by bare name, from a configuration."""
    return {s.name: getattr(getattr(cfg, s.section), s.name) for s in RUNTIME_SETTINGS}


def check_runtime(values: Mapping[str, Any], *, max_unlock_seconds: float | None = None,
                  prefix: bool = False) -> None:
    """The rules between run-time settings, written once: the TOML check, the store's update and
    :class:`edge.decision.Policy` all call this (SettingError naming the field). ``prefix`` names fields
    ``decision.x`` (the file) or ``x`` (the store, the settings page); without ``max_unlock_seconds`` the unlock
    time is not checked (the decision policy does not use it)."""
    def key(name: str) -> str:
        return f"{_RUNTIME_BY_NAME[name].section}.{name}" if prefix else name

    if values["frames_required"] > values["frames_considered"]:
        raise SettingError(key("frames_required"), f"must not exceed {key('frames_considered')} "
                           f"({values['frames_required']} > {values['frames_considered']})")
    if max_unlock_seconds is not None and values["unlock_seconds"] > max_unlock_seconds:
        raise SettingError(key("unlock_seconds"), f"must not exceed door.max_unlock_seconds "
                           f"({values['unlock_seconds']} > {max_unlock_seconds})")


def weakenings(values: Mapping[str, Any], *, model_threshold: float | None) -> list[str]:
    """Why these run-time settings make the door easier to open than it was measured to be (empty: they do not).
    The settings page asks for an explicit confirmation of these and logs them as such."""
    reasons = []
    threshold = values.get("threshold")
    if threshold is not None and model_threshold is not None and threshold < model_threshold:
        reasons.append(f"the match threshold {threshold:g} is below the {model_threshold:.3f} this model was "
                       f"calibrated for: look-alikes and strangers get in more easily")
    level = values.get("security_level")
    if level is not None and level < DecisionConfig.security_level:
        reasons.append(f"the security level lets up to 1 stranger in {level:,} attempts in (the default is 1 in "
                       f"{DecisionConfig.security_level:,}): the door's threshold is lower")
    if values.get("frames_required") == 1:
        reasons.append("one matching frame is enough to open the door: a single lucky frame (or a photograph "
                       "held up for a moment) opens it")
    return reasons


# Keys people are likely to try, and what to do instead.
UNKNOWN_KEY_HINTS = {"mqtt.password": "the broker password does not belong in the configuration; put it in a file "
                                      "readable only by the service and set mqtt.password_file"}


def from_dict(raw: dict) -> Config:
    """Validate a parsed TOML document; raise SettingError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("configuration: must be a table of sections")
    sections = _section_types()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise SettingError(unknown[0], f"unknown section; known sections: {', '.join(sections)}")
    built = {}
    for name, cls in sections.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise SettingError(name, f"must be a table ([{name}])")
        fields = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(values) - set(fields))
        if bad:
            key = f"{name}.{bad[0]}"
            raise SettingError(key, UNKNOWN_KEY_HINTS.get(key, f"unknown key; known keys: {', '.join(fields)}"))
        checked = {k: _BY_KEY[f"{name}.{k}"].check(v) for k, v in values.items()}
        built[name] = cls(**checked)
    cfg = Config(**built)
    _check_cross_field(cfg)
    return cfg


def _check_cross_field(cfg: Config) -> None:
    door, cam = cfg.door, cfg.camera
    check_runtime(runtime_defaults(cfg), max_unlock_seconds=door.max_unlock_seconds, prefix=True)
    if cam.retry_initial_seconds > cam.retry_max_seconds:
        raise SettingError("camera.retry_initial_seconds", "must not exceed camera.retry_max_seconds")
    if cam.source == "folder" and not cam.folder:
        raise SettingError("camera.folder", 'required when camera.source = "folder"')
    seen: dict[int, str] = {}
    for k, _label in PIN_NAMES:
        pin = getattr(door, k)
        if pin is None:
            continue
        if pin in seen:
            raise SettingError(f"door.{k}", f"pin {pin} is already used by door.{seen[pin]}")
        seen[pin] = k
    light = cfg.liveness.illuminator_pin
    if light is not None and light in seen:
        raise SettingError("liveness.illuminator_pin", f"pin {light} is already used by door.{seen[light]}")
    _check_mqtt(cfg.mqtt)


_TOPIC_BAD = re.compile(r"[#+\x00]")


def _check_mqtt(m: MqttConfig) -> None:
    for key in ("base_topic", "discovery_prefix"):
        value = getattr(m, key)
        if value and (_TOPIC_BAD.search(value) or value.startswith("/") or value.endswith("/") or "//" in value):
            raise SettingError(f"mqtt.{key}", f"{value!r} is not a usable topic; use plain words separated by '/', "
                                              f"without '+', '#' or a leading or trailing '/'")
    if not m.discovery_prefix:
        raise SettingError("mqtt.discovery_prefix", 'must not be empty (Home Assistant\'s default is "homeassistant")')
    if m.enabled and not m.host.strip():
        raise SettingError("mqtt.host", "the broker's host name or address is required when mqtt.enabled = true")
    if any(c.isspace() for c in m.host):
        raise SettingError("mqtt.host", f"{m.host!r} contains spaces; give a host name or an address")
    if bool(m.cert_file) != bool(m.key_file):
        missing = "key_file" if m.cert_file else "cert_file"
        raise SettingError(f"mqtt.{missing}", "a client certificate needs both mqtt.cert_file and mqtt.key_file")
    if (m.ca_file or m.cert_file) and not m.tls:
        raise SettingError(f"mqtt.{'ca_file' if m.ca_file else 'cert_file'}", "certificate files need mqtt.tls = true")
    if m.password_file and not m.username:
        raise SettingError("mqtt.username", "required with mqtt.password_file")
    if m.allow_remote_unlock and len(m.code) < 4:
        raise SettingError("mqtt.code", "remote unlock needs a code of at least 4 characters that Home Assistant "
                                        "asks for (set mqtt.code, or mqtt.allow_remote_unlock = false)")
    if m.reconnect_min_seconds > m.reconnect_max_seconds:
        raise SettingError("mqtt.reconnect_min_seconds", "must not exceed mqtt.reconnect_max_seconds")
    if len(m.client_id) > 128:
        raise SettingError("mqtt.client_id", "at most 128 characters")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a TOML file; ``None`` gives the built-in defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    _resolve_relative_paths(raw, p.resolve().parent)
    try:
        return from_dict(raw)
    except SettingError as exc:
        raise SettingError(exc.field, exc.problem, prefix=f"{p}: ") from None


PATH_KEYS = (("paths", "state_dir"), ("paths", "models_dir"), ("camera", "folder"),
             ("store", "key_file"), ("store", "passphrase_file"), ("mqtt", "ca_file"), ("mqtt", "cert_file"),
             ("mqtt", "key_file"), ("mqtt", "password_file"))


def _resolve_relative_paths(raw: dict, base: Path) -> None:
    """Relative paths in a file mean 'next to this file', so a checkout's dev config works from any cwd."""
    for section, key in PATH_KEYS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not os.path.isabs(value):
            raw[section][key] = os.path.normpath(base / value)


def describe() -> list[tuple[str, Any, str]]:
    """(key, default, documentation) for every setting: used to write and check the commented example."""
    return [(s.key, s.default, s.help) for s in SETTINGS]
