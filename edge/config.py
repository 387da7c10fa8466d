"""The one validated place for settings.

The service reads a single TOML file (``/etc/edge-face/config.toml`` under systemd). Every key has a type, a
default and, where it matters, a range or a set of allowed values; :func:`load` checks all of them and raises a
:class:`~edge.errors.ConfigError` that names the key and says what is allowed. Unknown keys are errors too,
because a misspelt ``relay_pin`` must not silently leave the default pin in charge of a door.

Settings that an administrator changes at run time (threshold, unlock time, decision policy, lockout) are kept
in the encrypted store; the values here are their first defaults.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS_DIR = PACKAGE_ROOT.parent / "models"
DEFAULT_CONFIG_PATH = Path("/etc/edge-face/config.toml")


def _opt(default, *, choices=None, min=None, max=None, doc="", nullable=False):
    """A field with validation metadata. ``nullable`` allows the string "none" (e.g. an unconnected pin)."""
    meta = {"choices": choices, "min": min, "max": max, "doc": doc, "nullable": nullable}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
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

    # Defaults measured with scripts/bench_door.py (facenet-int8, final pipeline; 189 people enrolled with 3
    # photographs each; 567 enrolled and 2,912 never-enrolled 2-second attempts at 15 fps), mean template per user:
    #   threshold 0.80, 3 of 5 frames in 2 s, margin 0.10 -> 83.8% of enrolled attempts granted, 0 strangers, 0
    #   wrong-person grants. 0.79 is the lowest threshold with 0 strangers (86.2%); 0.77 let 2 look-alikes in, the
    #   manifest's per-comparison 0.69 let 13 in. 0.80 keeps one step of headroom above the last stranger.
    threshold: float | None = _opt(0.80, min=-1.0, max=1.0, nullable=True,
                                   doc="Cosine threshold; none = the model manifest's door threshold.")
    unlock_seconds: float = _opt(3.0, min=0.5, max=60.0)
    frames_required: int = _opt(3, min=1, max=30, doc="k: matching frames needed ...")
    frames_considered: int = _opt(5, min=1, max=60, doc="... among the last n frames ...")
    window_seconds: float = _opt(2.0, min=0.1, max=30.0, doc="... within this time window.")
    margin: float = _opt(0.10, min=0.0, max=1.0, doc="Lead over the second-best user.")
    aggregation: str = _opt("mean", choices=("mean", "best"),
                            doc="Per-user score: mean = against the user's mean template; best = best template.")
    min_face_px: int = _opt(80, min=20, max=2000, doc="Smallest face side (pixels) considered.")
    cooldown_seconds: float = _opt(5.0, min=0.0, max=600.0)
    lockout_after: int = _opt(5, min=1, max=1000, doc="Denials from one face before a lockout.")
    lockout_seconds: float = _opt(60.0, min=0.0, max=86400.0)
    keep_unknown_photos: bool = _opt(False, doc="Keep encrypted crops of unknown faces.")


@dataclass(frozen=True)
class StoreConfig:
    key_source: str = _opt("file", choices=("file", "credential", "passphrase"),
                           doc="file: state_dir/key; credential: $CREDENTIALS_DIRECTORY; passphrase: derived.")
    key_file: str = _opt("", doc="Key file; empty = <state_dir>/db.key.")
    credential_name: str = _opt("edge-face-key")
    passphrase_file: str = _opt("", doc="File holding the passphrase when key_source = passphrase.")
    log_max_bytes: int = _opt(1_048_576, min=4096, max=1 << 30)
    log_keep: int = _opt(5, min=1, max=100)


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


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    door: DoorConfig = field(default_factory=DoorConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    web: WebConfig = field(default_factory=WebConfig)
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


def _check_value(key: str, value: Any, f: dataclasses.Field) -> Any:
    meta = f.metadata
    if meta.get("nullable") and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    default = f.default
    kind = type(default) if default is not None else float
    if f.type in ("int | None",):
        kind = int
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false (got {value!r})")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            extra = ' or "none"' if meta.get("nullable") else ""
            raise ConfigError(f"{key}: must be a whole number{extra} (got {value!r})")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            extra = ' or "none"' if meta.get("nullable") else ""
            raise ConfigError(f"{key}: must be a number{extra} (got {value!r})")
        value = float(value)
    elif kind is str:
        if isinstance(value, int) and not isinstance(value, bool) and f.name == "device":
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string (got {value!r})")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)} (got {value!r})")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(f"{key}: must be between {lo} and {hi} (got {value!r})")
    return value


def _section_types() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def from_dict(raw: dict) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("configuration: must be a table of sections")
    sections = _section_types()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; known sections: {', '.join(sections)}")
    built = {}
    for name, cls in sections.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: must be a table ([{name}])")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        bad = sorted(set(values) - set(fields))
        if bad:
            raise ConfigError(f"{name}.{bad[0]}: unknown key; known keys: {', '.join(fields)}")
        checked = {k: _check_value(f"{name}.{k}", v, fields[k]) for k, v in values.items()}
        built[name] = cls(**checked)
    cfg = Config(**built)
    _check_cross_field(cfg)
    return cfg


def _check_cross_field(cfg: Config) -> None:
    d, door, cam = cfg.decision, cfg.door, cfg.camera
    if d.frames_required > d.frames_considered:
        raise ConfigError(
            f"decision.frames_required: must not exceed decision.frames_considered "
            f"({d.frames_required} > {d.frames_considered})")
    if d.unlock_seconds > door.max_unlock_seconds:
        raise ConfigError(
            f"decision.unlock_seconds: must not exceed door.max_unlock_seconds "
            f"({d.unlock_seconds} > {door.max_unlock_seconds})")
    if cam.retry_initial_seconds > cam.retry_max_seconds:
        raise ConfigError("camera.retry_initial_seconds: must not exceed camera.retry_max_seconds")
    if cam.source == "folder" and not cam.folder:
        raise ConfigError('camera.folder: required when camera.source = "folder"')
    pins = {k: getattr(door, k) for k, _label in PIN_NAMES}
    seen: dict[int, str] = {}
    for k, pin in pins.items():
        if pin is None:
            continue
        if pin in seen:
            raise ConfigError(f"door.{k}: pin {pin} is already used by door.{seen[pin]}")
        seen[pin] = k


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
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


PATH_KEYS = (("paths", "state_dir"), ("paths", "models_dir"), ("camera", "folder"),
             ("store", "key_file"), ("store", "passphrase_file"))


def _resolve_relative_paths(raw: dict, base: Path) -> None:
    """Relative paths in a file mean 'next to this file', so a checkout's dev config works from any cwd."""
    for section, key in PATH_KEYS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not os.path.isabs(value):
            raw[section][key] = os.path.normpath(base / value)


def describe() -> list[tuple[str, Any, str]]:
    """(key, default, documentation) for every setting: used to write and check the commented example."""
    rows = []
    for name, cls in _section_types().items():
        for f in dataclasses.fields(cls):
            rows.append((f"{name}.{f.name}", f.default, f.metadata.get("doc", "")))
    return rows
