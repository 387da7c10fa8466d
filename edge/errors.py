"""Errors a person can act on.

Every failure that comes from the outside world (a bad file, a missing model, a wrong key, a bad setting) is
raised as an :class:`EdgeError` subclass with a message written for the person at the door or the console.
The CLI prints the message and exits non-zero; it never shows a traceback for these.
"""


class EdgeError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing sentence."""

    exit_code = 2


class ConfigError(EdgeError):
    """A configuration value is missing, of the wrong type or out of range; the message names the key."""


class ImageError(EdgeError):
    """An input could not be read as a photograph."""


class ModelError(EdgeError):
    """A model file is missing, corrupt or does not match the manifest; the message says how to rebuild."""


class StoreError(EdgeError):
    """The encrypted database or access log cannot be used (wrong key, tampered, locked, ...)."""


class CameraError(EdgeError):
    """A frame source failed or disappeared."""


class SettingError(ConfigError):
    """One setting has a value that is not allowed. ``field`` names it (``door.relay_pin`` in a file, the bare
    ``threshold`` on the settings page), so a form can mark the right input without reading the message."""

    def __init__(self, field: str, problem: str, *, prefix: str = ""):
        super().__init__(f"{prefix}{field}: {problem}")
        self.field = field
        self.problem = problem


class DiskFullError(StoreError):
    """A write failed because the file system is full (ENOSPC) or the quota is used up; nothing was changed."""


class BrokerError(EdgeError):
    """The MQTT broker cannot be reached or refused the connection; the message says which and why."""
