"""What the admin web page may ask of the running daemon. :class:`edge.service.DoorService` implements it; the
web tests use a double. ``controller=None`` in :func:`edge.web.create_app` means no daemon is running."""

from __future__ import annotations

from typing import Hashable, Protocol

import numpy as np

from .config import Config
from .health import HealthSeries
from .liveview import Stream
from .status import Status


class Controller(Protocol):
    @property
    def config(self) -> Config:
        """The configuration in force (it follows SIGHUP)."""
        ...

    def status(self) -> Status: ...

    def snapshot_jpeg(self) -> bytes | None:
        """The live view's latest picture (scaled, the face marked); None without a camera."""
        ...

    def live_stream(self, viewer: Hashable | None = None) -> Stream | None:
        """The live view as MJPEG parts; None when the most viewers allowed are watching. A ``viewer`` (the
        browser's session) that asks again ends its previous stream."""
        ...

    def health_series(self) -> HealthSeries:
        """Door health over the last 24 hours."""
        ...

    def capture_frames(self, count: int, seconds: float) -> list[np.ndarray]: ...

    def capture_enrolment_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        """Frames for camera enrolment while the door's LEDs ask for a slow head turn (back to normal after)."""
        ...

    def remote_unlock(self, admin_username: str, *, admin_id: str | None = None,
                      address: str | None = None) -> None:
        """Open the door once; logged with the admin's name, id and client address."""
        ...

    def reload(self) -> None:
        """Users, templates or settings changed: apply them before the next frame."""
        ...
