"""``[mqtt]`` as the MQTT code uses it: the section lives in the one settings table (:class:`edge.config.MqttConfig`,
checked with every other setting); this module adds what needs the disk.

:func:`check_files` opens the CA, certificate, key and password files and loads the TLS ones, so ``config check``
and ``doctor`` report a missing or unreadable file before the service tries to connect. The broker password is
never in the TOML file: ``password_file`` names a file (mode 0600) whose first line is the password, read only
when the client connects. The Home Assistant lock ``code`` is compared in constant time and never logged.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from .. import config as _config
from ..config import MqttConfig
from ..errors import SettingError

MqttSettings = MqttConfig
FILE_KEYS = ("ca_file", "cert_file", "key_file", "password_file")


def from_dict(raw: dict | None) -> MqttConfig:
    """The ``[mqtt]`` table alone, validated like the whole file (tests, tools)."""
    return _config.from_dict({"mqtt": {} if raw is None else raw}).mqtt


def check_files(settings: MqttConfig) -> list[str]:
    """Open every file the connection will need; SettingError for the first unusable one.

    Returns warnings (a key or password file other users can read) for ``config check`` and ``doctor``.
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
            raise SettingError(f"mqtt.{key}", f"{path} does not exist") from None
        except IsADirectoryError:
            raise SettingError(f"mqtt.{key}", f"{path} is a folder, not a file") from None
        except OSError as exc:
            raise SettingError(f"mqtt.{key}", f"cannot read {path}: {exc.strerror}") from None
        if key in ("password_file", "key_file") and mode & (stat.S_IRWXG | stat.S_IRWXO) & ~stat.S_IRGRP:
            warnings.append(f"mqtt.{key}: {path} can be read by other users; chmod 600 it")
    settings.read_password()
    if settings.tls:
        context = ssl.create_default_context()
        if settings.ca_file:
            try:
                context.load_verify_locations(cafile=settings.ca_file)
            except (ssl.SSLError, ValueError) as exc:
                raise SettingError("mqtt.ca_file", f"{settings.ca_file} is not a PEM certificate: {exc}") from None
        if settings.cert_file:
            try:
                context.load_cert_chain(settings.cert_file, settings.key_file)
            except (ssl.SSLError, ValueError) as exc:
                raise SettingError("mqtt.cert_file", f"{settings.cert_file} and {settings.key_file} are not a "
                                                     f"matching PEM certificate and key: {exc}") from None
    return warnings
