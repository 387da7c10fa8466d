"""The systemd notify protocol, without a dependency.

systemd passes ``$NOTIFY_SOCKET`` (a filesystem path, or an abstract socket name written with a leading ``@``)
and, when the unit has ``WatchdogSec=``, ``$WATCHDOG_USEC``. Messages are ``KEY=VALUE`` lines in one datagram.
Outside systemd every call is a cheap no-op, so the service code never has to ask whether it runs under it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger(__name__)


class Notifier:
    """Sends ``READY=1``, ``STATUS=...``, ``WATCHDOG=1`` and ``STOPPING=1`` to systemd (or nowhere)."""

    def __init__(self, *, socket_path: str | None = None, environ: dict | None = None):
        env = os.environ if environ is None else environ
        self.address = _address(socket_path if socket_path is not None else env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; True if it was delivered to a listener."""
        if self.address is None:
            return False
        payload = "\n".join(f"{key.upper()}={_one_line(value)}" for key, value in fields.items())
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload.encode("utf-8"), self.address)
                return True
            except OSError as exc:
                if not self._warned:  # systemd gone or socket wrong: say so once, never crash the door
                    log.warning("systemd notify socket unusable: %s", exc)
                    self._warned = True
                return False

    def ready(self, status: str = "") -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(status=text)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self, status: str = "") -> bool:
        return self.notify(stopping=1, **({"status": status} if status else {}))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")  # Linux abstract namespace
    return value


def _watchdog_seconds(env) -> float | None:
    """The watchdog period, if systemd asked for pings and they are meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", usec)
        return None
    return value / 1e6 if value > 0 else None


def _one_line(value) -> str:
    return str(value).replace("\n", " ")
