"""What the admin web page may ask of the running daemon. :class:`edge.service.DoorService` implements it; the
web tests use a double. ``controller=None`` in :func:`edge.web.create_app` means no daemon is running."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .config import Config
from .status import Status


class Controller(Protocol):
    @property
    def config(self) -> Config:
        """The configuration in force (it follows SIGHUP)."""
        ...

    def status(self) -> Status: ...

    def snapshot_jpeg(self) -> bytes | None: ...

    def capture_frames(self, count: int, seconds: float) -> list[np.ndarray]: ...

    def remote_unlock(self, admin_username: str, *, admin_id: str | None = None,
                      address: str | None = None) -> None:
        """Open the door once; logged with the admin's name, id and client address."""
        ...

    def reload(self) -> None:
        """Users, templates or settings changed: apply them before the next frame."""
        ...
