"""Door health over the last 24 hours: frames per second, recognition time per frame, camera restarts, relay
operations and held-open alarms, in five-minute buckets, for the dashboard's sparklines.

Fed cheaply: the door loop calls :meth:`HealthRecorder.frame` with the time one frame took (a lock and a few
additions), and the recorder listens to the :class:`edge.events.EventHub` for relay, camera and door events (in
the hub's thread, never the door's). The buckets hold counts and timings only (no names, no faces), so they are
kept as plain JSON in ``<state_dir>/health.json`` (saved when the service stops and every hour) and a restart
does not wipe the day's history.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .atomic import write_durable
from .errors import DiskFullError

log = logging.getLogger(__name__)

FILE_NAME = "health.json"
BUCKET_SECONDS = 300
SPAN_SECONDS = 86400
COUNTERS = ("camera_restarts", "relay_operations", "held_open_alarms")


@dataclass(frozen=True)
class HealthSeries:
    """One value per bucket, oldest first (``starts``); None where nothing was measured."""

    starts: list[float]
    fps: list[float | None]
    ms_per_frame: list[float | None]
    camera_restarts: list[int]
    relay_operations: list[int]
    held_open_alarms: list[int]

    def totals(self) -> dict[str, int]:
        return {name: sum(getattr(self, name)) for name in COUNTERS}


class _Bucket:
    __slots__ = ("frames", "busy", "first", "last", "camera_restarts", "relay_operations", "held_open_alarms")

    def __init__(self):
        self.frames = 0
        self.busy = 0.0
        self.first = math.inf
        self.last = -math.inf
        self.camera_restarts = self.relay_operations = self.held_open_alarms = 0

    def as_list(self) -> list:
        return [self.frames, round(self.busy, 6), self.first if self.frames else None,
                self.last if self.frames else None, self.camera_restarts, self.relay_operations,
                self.held_open_alarms]

    @classmethod
    def from_list(cls, values: list) -> "_Bucket":
        b = cls()
        b.frames, b.busy = int(values[0]), float(values[1])
        b.first = math.inf if values[2] is None else float(values[2])
        b.last = -math.inf if values[3] is None else float(values[3])
        b.camera_restarts, b.relay_operations, b.held_open_alarms = (int(v) for v in values[4:7])
        return b


class HealthRecorder:
    """Thread-safe; ``frame(seconds)`` from the door loop, ``on_event(event)`` as an EventHub listener,
    ``series()`` for the page."""

    def __init__(self, *, path: str | os.PathLike | None = None, bucket_seconds: int = BUCKET_SECONDS,
                 span_seconds: int = SPAN_SECONDS, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else None
        self.bucket_seconds = int(bucket_seconds)
        self.span_seconds = int(span_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, _Bucket] = {}
        self._saved_at = clock()
        if self.path is not None:
            self._load()

    def _bucket(self, now: float) -> _Bucket:
        key = int(now // self.bucket_seconds)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
            oldest = key - self.span_seconds // self.bucket_seconds
            for old in [k for k in self._buckets if k <= oldest]:
                del self._buckets[old]
        return bucket

    # ------------------------------------------------------------------ recording
    def frame(self, seconds: float, now: float | None = None) -> None:
        """One frame went through recognition in ``seconds``."""
        now = self.clock() if now is None else now
        with self._lock:
            b = self._bucket(now)
            b.frames += 1
            b.busy += seconds
            b.first = min(b.first, now)
            b.last = max(b.last, now)
        if self.path is not None and now - self._saved_at > 3600:
            self.save()

    def count(self, name: str, now: float | None = None) -> None:
        if name not in COUNTERS:
            raise ValueError(f"unknown health counter {name!r}")
        with self._lock:
            b = self._bucket(self.clock() if now is None else now)
            setattr(b, name, getattr(b, name) + 1)

    def on_event(self, event) -> None:
        """EventHub listener: a relay switched on, a camera failure, a door held open."""
        if event.kind == "relay" and event.details.get("active"):
            self.count("relay_operations", event.time)
        elif event.kind == "camera_failure":
            self.count("camera_restarts", event.time)
        elif event.kind == "door_held_open":
            self.count("held_open_alarms", event.time)

    # ------------------------------------------------------------------ reading
    def series(self, now: float | None = None) -> HealthSeries:
        now = self.clock() if now is None else now
        last = int(now // self.bucket_seconds)
        count = self.span_seconds // self.bucket_seconds
        keys = range(last - count + 1, last + 1)
        fps: list[float | None] = []
        ms: list[float | None] = []
        counters: dict[str, list[int]] = {name: [] for name in COUNTERS}
        with self._lock:
            for key in keys:
                b = self._buckets.get(key)
                if b is None or not b.frames:
                    fps.append(None)
                    ms.append(None)
                else:
                    span = b.last - b.first
                    fps.append(round((b.frames - 1) / span, 2) if b.frames > 1 and span > 0 else None)
                    ms.append(round(1000 * b.busy / b.frames, 1))
                for name in COUNTERS:
                    counters[name].append(getattr(b, name) if b is not None else 0)
        return HealthSeries(starts=[k * self.bucket_seconds for k in keys], fps=fps, ms_per_frame=ms, **counters)

    # ------------------------------------------------------------------ on disk
    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = {"bucket_seconds": self.bucket_seconds,
                    "buckets": {str(k): b.as_list() for k, b in self._buckets.items()}}
            self._saved_at = self.clock()
        try:
            write_durable(self.path, json.dumps(data).encode("utf-8"))
        except (OSError, DiskFullError) as exc:
            log.warning("cannot save the door health history to %s: %s", self.path, exc)

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("bucket_seconds") != self.bucket_seconds:
                return
            buckets = {int(k): _Bucket.from_list(v) for k, v in data["buckets"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("door health history %s not readable (%s); starting a new one", self.path, exc)
            return
        oldest = int(self.clock() // self.bucket_seconds) - self.span_seconds // self.bucket_seconds
        self._buckets = {k: b for k, b in buckets.items() if k > oldest}
