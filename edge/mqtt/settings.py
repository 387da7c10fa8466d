"""``[mqtt]``: how the door talks to the home's MQTT broker (off by default).

Every key is checked the way the rest of the configuration is: wrong type, out of range or an impossible
combination raises a :class:`~edge.errors.ConfigError` naming ``mqtt.<key>``. The broker password is never in
the TOML file: ``password_file`` names a file (mode 0600) whose first line is the password, read only when the
client connects. The Home Assistant lock ``code`` is compared in constant time and never logged.

:func:`check_files` goes one step further than the types: it opens the CA, certificate, key and password files,
so ``config check`` reports a missing or unreadable file before the service starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SECTION = "mqtt"
DEFAULT_PORT, DEFAULT_TLS_PORT = 1883, 8883
_TOPIC_BAD = re.compile(r"[#+\x00]")
_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]+")


def hostname() -> str:
    return socket.gethostname().split(".")[0] or "door"


def slug(text: str) -> str:
    """Home Assistant's discovery topics accept only ``[a-zA-Z0-9_-]`` in node and object ids."""
    return _ID_BAD.sub("_", text).strip("_") or "door"


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = False
    host: str = "localhost"
    port: int = 0                      # 0: 1883, or 8883 with tls
    tls: bool = False
    ca_file: str = ""                  # empty with tls: the system's certificate authorities
    cert_file: str = ""                # client certificate (optional, with key_file)
    key_file: str = ""
    username: str = ""
    password_file: str = ""            # first line is the password; never the password itself here
    client_id: str = ""                # empty: edge-face-<hostname>
    base_topic: str = ""               # empty: edge-face/<hostname>
    discovery_prefix: str = "homeassistant"
    device_name: str = ""              # empty: "Door <hostname>"
    allow_remote_unlock: bool = False
    code: str = ""                     # Home Assistant lock code; required when allow_remote_unlock
    unlock_attempts_per_minute: int = 5
    publish_faces: bool = False        # the latest face crop as a camera entity: personal data
    queue_size: int = 1000             # events kept while the broker is away; the oldest are dropped
    keepalive_seconds: int = 30
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0

    # ------------------------------------------------------------------ derived values
    @property
    def broker_port(self) -> int:
        return self.port or (DEFAULT_TLS_PORT if self.tls else DEFAULT_PORT)

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"edge-face-{hostname()}"

    @property
    def topic(self) -> str:
        return self.base_topic or f"edge-face/{hostname()}"

    @property
    def node_id(self) -> str:
        """Stable across restarts: derived from the client id, which defaults to the host name."""
        return slug(self.effective_client_id)

    @property
    def name(self) -> str:
        return self.device_name or f"Door {hostname()}"

    @property
    def broker(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.broker_port}"

    def read_password(self) -> str | None:
        """The password file's first line (``None`` without a file); ConfigError if it cannot be read."""
        if not self.password_file:
            return None
        path = Path(self.password_file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"mqtt.password_file: {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {path}: {getattr(exc, 'strerror', exc)}") from None
        password = text.splitlines()[0] if text.splitlines() else ""
        if not password:
            raise ConfigError(f"mqtt.password_file: {path} is empty; put the broker password on its first line")
        return password

    def redacted(self) -> dict:
        """The settings with the code masked, for logs and status pages."""
        values = dataclasses.asdict(self)
        values["code"] = "***" if self.code else ""
        return values


_RANGES = {"port": (0, 65535), "unlock_attempts_per_minute": (1, 60), "queue_size": (10, 100_000),
           "keepalive_seconds": (5, 3600), "reconnect_min_seconds": (0.05, 600.0),
           "reconnect_max_seconds": (0.1, 3600.0)}
FILE_KEYS = ("ca_file", "cert_file", "key_file", "password_file")


def _check_type(key: str, value: Any, default: Any) -> Any:
    name = f"{SECTION}.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false (got {value!r})")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: must be a whole number (got {value!r})")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: must be a number (got {value!r})")
        value = float(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{name}: must be a string (got {value!r})")
    if key in _RANGES:
        lo, hi = _RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError(f"{name}: must be between {lo:g} and {hi:g} (got {value!r})")
    return value


def _check_topic(key: str, value: str) -> None:
    if not value:
        return
    if _TOPIC_BAD.search(value) or value.startswith("/") or value.endswith("/") or "//" in value:
        raise ConfigError(f"{SECTION}.{key}: {value!r} is not a usable topic; use plain words separated by '/', "
                          f"without '+', '#' or a leading or trailing '/'")


def validate(settings: MqttSettings) -> MqttSettings:
    """Checks between keys; returns the settings unchanged or raises ConfigError."""
    s = settings
    _check_topic("base_topic", s.base_topic)
    _check_topic("discovery_prefix", s.discovery_prefix)
    if not s.discovery_prefix:
        raise ConfigError(f"{SECTION}.discovery_prefix: must not be empty (Home Assistant's default is "
                          f"\"homeassistant\")")
    if s.enabled and not s.host.strip():
        raise ConfigError(f"{SECTION}.host: the broker's host name or address is required when mqtt.enabled = true")
    if any(c.isspace() for c in s.host):
        raise ConfigError(f"{SECTION}.host: {s.host!r} contains spaces; give a host name or an address")
    if bool(s.cert_file) != bool(s.key_file):
        missing = "key_file" if s.cert_file else "cert_file"
        raise ConfigError(f"{SECTION}.{missing}: a client certificate needs both mqtt.cert_file and mqtt.key_file")
    if (s.ca_file or s.cert_file) and not s.tls:
        key = "ca_file" if s.ca_file else "cert_file"
        raise ConfigError(f"{SECTION}.{key}: certificate files need mqtt.tls = true")
    if s.password_file and not s.username:
        raise ConfigError(f"{SECTION}.username: required with mqtt.password_file")
    if s.allow_remote_unlock and len(s.code) < 4:
        raise ConfigError(f"{SECTION}.code: remote unlock needs a code of at least 4 characters that Home "
                          f"Assistant asks for (set mqtt.code, or mqtt.allow_remote_unlock = false)")
    if s.reconnect_min_seconds > s.reconnect_max_seconds:
        raise ConfigError(f"{SECTION}.reconnect_min_seconds: must not exceed mqtt.reconnect_max_seconds")
    if s.client_id and len(s.client_id) > 128:
        raise ConfigError(f"{SECTION}.client_id: at most 128 characters")
    return s


def from_dict(raw: dict | None) -> MqttSettings:
    """Validate the ``[mqtt]`` table of a parsed TOML document."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{SECTION}: must be a table ([{SECTION}])")
    fields = {f.name: f for f in dataclasses.fields(MqttSettings)}
    if "password" in raw:
        raise ConfigError(f"{SECTION}.password: the broker password does not belong in the configuration; put it "
                          f"in a file readable only by the service and set mqtt.password_file")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{SECTION}.{unknown[0]}: unknown key; known keys: {', '.join(fields)}")
    values = {k: _check_type(k, v, fields[k].default) for k, v in raw.items()}
    return validate(MqttSettings(**values))


def resolve_paths(settings: MqttSettings, base: str | os.PathLike) -> MqttSettings:
    """Relative file names mean 'next to the configuration file', like the rest of the configuration."""
    changes = {k: os.path.normpath(Path(base) / getattr(settings, k)) for k in FILE_KEYS
               if getattr(settings, k) and not os.path.isabs(getattr(settings, k))}
    return dataclasses.replace(settings, **changes) if changes else settings


def check_files(settings: MqttSettings) -> list[str]:
    """Open every file the connection will need; ConfigError for the first unusable one.

    Returns warnings (e.g. a password file others can read) for ``config check`` and ``doctor`` to show.
    """
    warnings: list[str] = []
    for key in FILE_KEYS:
        name = getattr(settings, key)
        if not name:
            continue
        path = Path(name)
        try:
            with path.open("rb") as fh:
                fh.read(1)
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"{SECTION}.{key}: {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"{SECTION}.{key}: {path} is a folder, not a file") from None
        except OSError as exc:
            raise ConfigError(f"{SECTION}.{key}: cannot read {path}: {exc.strerror}") from None
        if key in ("password_file", "key_file") and mode & (stat.S_IRWXG | stat.S_IRWXO) & ~stat.S_IRGRP:
            warnings.append(f"{SECTION}.{key}: {path} can be read by other users; chmod 600 it")
    settings.read_password()
    if settings.tls:
        _check_tls_files(settings)
    return warnings


def _check_tls_files(settings: MqttSettings) -> None:
    import ssl

    context = ssl.create_default_context()
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{SECTION}.ca_file: {settings.ca_file} is not a PEM certificate: {exc}") from None
    if settings.cert_file:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{SECTION}.cert_file: {settings.cert_file} and {settings.key_file} are not a "
                              f"matching PEM certificate and key: {exc}") from None
