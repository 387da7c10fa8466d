"""What the door tells the rest of the world: typed events and a hub that hands them to listeners.

The door loop, the door devices, the camera feed and the service shell :meth:`EventHub.emit` an :class:`Event`
for everything that happens (grant, deny, unknown, lockout, remote unlock, exit button, door opened/closed/held
open, relay on/off, camera failure/recovery, service start/stop). ``emit`` only appends to a bounded queue: it
never blocks and never raises, so a slow or broken listener (an MQTT broker that is down) cannot hold the door.
Listeners run one after another in the thread ``events``; an exception in one is logged and the next runs.

The access log is *not* a listener: it is the audit record, written synchronously by the door loop before the
event is published (a grant is on disk before anything else hears of it). Listeners are for notification.

    service.events.add_listener(lambda event: print(event.kind, event.user))
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

# Kinds an Event may have. The first group is also written to the access log (edge.accesslog.EVENT_KINDS).
DECISION_KINDS = ("grant", "deny", "unknown", "lockout", "spoof", "remote_unlock")  # spoof: liveness refused
DOOR_KINDS = ("exit_button", "door_opened", "door_closed", "door_held_open")
CAMERA_KINDS = ("camera_failure", "camera_recovered")
SERVICE_KINDS = ("service_start", "service_stop")
RELAY_KIND = "relay"                     # details: active (bool), reason (str); not written to the access log
EVENT_KINDS = DECISION_KINDS + DOOR_KINDS + CAMERA_KINDS + SERVICE_KINDS + (RELAY_KIND,)

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Event:
    """One thing that happened at the door. ``user`` is a user name (never an id), ``similarity`` the best
    cosine similarity for decisions, ``time`` wall-clock seconds; ``details`` holds the kind's extra fields."""

    kind: str
    time: float
    user: str | None = None
    similarity: float | None = None
    source: str = "door"
    details: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


class EventHub:
    """Fan-out of :class:`Event` to registered listeners, off the door's threads."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE, clock: Callable[[], float] = time.time):
        self._listeners: list[Listener] = []
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=queue_size)
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.clock = clock
        self.dropped = 0                    # events lost because the listeners fell too far behind

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every later event; returns a function that removes it again."""
        with self._guard:
            self._listeners.append(listener)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                self._thread.start()
        return lambda: self._remove(listener)

    def _remove(self, listener: Listener) -> None:
        with self._guard:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, kind: str, *, user: str | None = None, similarity: float | None = None, source: str = "door",
             at: float | None = None, **details: Any) -> Event:
        """Publish an event; returns at once whatever the listeners do. ``at``: when it happened (the access
        log's time, so that both agree), else now."""
        event = Event(kind=kind, time=self.clock() if at is None else at, user=user, similarity=similarity,
                      source=source, details=details)
        if self._thread is None:            # nobody listens: nothing to queue
            return event
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("event listeners are behind; %d events dropped", self.dropped)
        return event

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._guard:
                listeners = list(self._listeners)
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener %r failed on %s", listener, event.kind)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        with self._guard:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("event listeners did not catch up; stopping without delivering the rest")
            return
        thread.join(timeout=timeout)
