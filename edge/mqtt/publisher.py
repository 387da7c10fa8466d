"""The door's voice on the broker: a thread of its own, so the door never waits for the network.

Every public method only puts something in memory under a short lock and returns; the thread ``mqtt`` connects,
publishes and reconnects. What it keeps:

* **events** (grant, deny, unknown, lockout, spoof, test) in a bounded queue, each with the time it happened.
  While the broker is away they wait; when the queue is full the oldest is dropped and counted. An event leaves
  the queue only when the broker acknowledged it (QoS 1); events in flight when a connection dies are sent again,
  so a consumer may see one twice (each carries an ``event_id``) but none within the bound is lost;
* **states** (lock, door, held-open, last granted, last similarity, fps, camera): only the latest value of each,
  retained, and sent again after every reconnect;
* the latest **face** crop (only with ``mqtt.publish_faces``), never retained.

On every connect it publishes the Home Assistant discovery configs (retained), subscribes to the lock's command
topic and announces ``online``; the broker publishes the retained last will ``offline`` if the door vanishes.
Reconnects back off from ``reconnect_min_seconds`` to ``reconnect_max_seconds``. Unlock commands go through
:class:`~edge.mqtt.remote.UnlockGate`; retained commands are ignored, so a stale "UNLOCK" left on the broker
cannot open the door at the next reconnect. The access log stays the record of truth: this is a copy for the
home's automation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as paho

from ..errors import EdgeError
from . import client as _client
from . import discovery
from .discovery import EVENT_TYPES, JAMMED, LOCKED, OFFLINE, ONLINE, UNLOCKED
from .remote import UnlockGate
from .settings import MqttSettings

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 20
LOOP_SECONDS = 0.05


def lock_state(*, unlocked: bool, door_open: bool | None, opened_while_locked: bool = True) -> str:
    """LOCKED/UNLOCKED from the relay; JAMMED when the door contact says open while the relay is locked.

    ``opened_while_locked=False`` (the door was opened during an unlock and the relay dropped while someone was
    still walking through) keeps LOCKED: that is an ordinary entry, and the held-open alarm covers a door left
    open; JAMMED is for a door that opened while locked (forced, or a latch that did not hold)."""
    if unlocked:
        return UNLOCKED
    return JAMMED if door_open and opened_while_locked else LOCKED


def iso_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class _Message:
    seq: int
    topic: str
    payload: bytes


class MqttPublisher:
    """Publishes the door to an MQTT broker and Home Assistant; ``start()``, then the non-blocking methods."""

    def __init__(self, settings: MqttSettings, *, on_unlock: Callable[[], None] | None = None,
                 on_unlock_refused: Callable[[str], None] | None = None, on_lock: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.topics = discovery.topics(settings)
        self.on_unlock = on_unlock
        self.on_unlock_refused = on_unlock_refused
        self.on_lock = on_lock
        self.clock = clock
        self.gate = UnlockGate(allow=settings.allow_remote_unlock, code=settings.code,
                               attempts_per_minute=settings.unlock_attempts_per_minute)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._events: deque[_Message] = deque()
        self._in_flight: dict[int, _Message] = {}       # paho message id -> event awaiting the broker's ack
        self._states: dict[str, bytes] = {}             # topic -> latest retained value
        self._dirty: set[str] = set()
        self._face: bytes | None = None
        self._seq = itertools.count(1)
        self._run_id = uuid.uuid4().hex[:8]
        self._thread: threading.Thread | None = None
        self._client: paho.Client | None = None
        self._connected = False
        self._state = "stopped"
        self._last_error = ""
        self._retry_at: float | None = None
        self._connected_since: float | None = None
        self.sent_events = 0
        self.dropped_events = 0
        self.connections = 0

    # ------------------------------------------------------------------ the door's side: never blocks
    def publish_event(self, kind: str, *, user: str | None = None, similarity: float | None = None,
                      at: float | None = None, **details) -> bool:
        """Queue an event for Home Assistant's ``event`` entity; False (and nothing queued) for other kinds."""
        if kind not in EVENT_TYPES:
            return False
        when = self.clock() if at is None else at
        seq = next(self._seq)
        body = {"event_type": kind, "user": user,
                "similarity": None if similarity is None else round(float(similarity), 4),
                "time": iso_time(when), "timestamp": round(when, 3), "event_id": f"{self._run_id}-{seq}"}
        body.update({k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, type(None)))})
        message = _Message(seq, self.topics.event, json.dumps(body, separators=(",", ":")).encode())
        with self._lock:
            while self._events and len(self._events) + len(self._in_flight) >= self.settings.queue_size:
                self._events.popleft()
                self.dropped_events += 1
                if self.dropped_events == 1 or self.dropped_events % 100 == 0:
                    log.warning("mqtt: broker unreachable and the queue is full: %d events dropped so far",
                                self.dropped_events)
            self._events.append(message)
            if kind == "grant" and user:
                self._set(self.topics.last_granted, user)
            if similarity is not None:
                self._set(self.topics.last_similarity, f"{float(similarity):.3f}")
        self._wake.set()
        return True

    def set_lock_state(self, state: str) -> None:
        if state not in discovery.LOCK_STATES:
            raise ValueError(f"lock state must be one of {discovery.LOCK_STATES}, not {state!r}")
        self._update(self.topics.lock_state, state)

    def set_door(self, *, unlocked: bool, door_open: bool | None, held_open: bool = False,
                 opened_while_locked: bool = True) -> None:
        """Relay and door contact together: lock state (with JAMMED), door sensor, held-open alarm."""
        state = lock_state(unlocked=unlocked, door_open=door_open, opened_while_locked=opened_while_locked)
        with self._lock:
            self._set(self.topics.lock_state, state)
            if door_open is not None:
                self._set(self.topics.door, "ON" if door_open else "OFF")
            self._set(self.topics.held_open, "ON" if held_open else "OFF")
        self._wake.set()

    def set_health(self, *, fps: float | None = None, camera: str | None = None) -> None:
        with self._lock:
            if fps is not None:
                self._set(self.topics.fps, f"{float(fps):.1f}")
            if camera is not None:
                self._set(self.topics.camera_state, str(camera)[:255])
        self._wake.set()

    def publish_face(self, jpeg: bytes) -> bool:
        """The latest face crop for the camera entity; ignored unless ``mqtt.publish_faces``."""
        if not self.settings.publish_faces or not jpeg:
            return False
        with self._lock:
            self._face = bytes(jpeg)
        self._wake.set()
        return True

    def status(self) -> dict:
        """Connection state for the settings page and the doctor (no secrets)."""
        with self._lock:
            queued = len(self._events) + len(self._in_flight)
        retry_in = None
        if self._retry_at is not None:
            retry_in = max(0.0, round(self._retry_at - time.monotonic(), 1))
        return {"state": self._state, "connected": self._connected, "broker": self.settings.broker,
                "base_topic": self.topics.base, "last_error": self._last_error, "retry_in": retry_in,
                "queued": queued, "dropped": self.dropped_events, "sent": self.sent_events,
                "connected_since": self._connected_since, "connections": self.connections,
                "remote_unlock": self.settings.allow_remote_unlock}

    def _set(self, topic: str, value: str) -> None:
        """Caller holds the lock."""
        data = value.encode()
        if self._states.get(topic) != data:
            self._states[topic] = data
            self._dirty.add(topic)

    def _update(self, topic: str, value: str) -> None:
        with self._lock:
            self._set(topic, value)
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MqttPublisher":
        if self._thread is None:
            self._state = "connecting"
            self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (retained) if connected, disconnect, stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._state = "stopped"

    def __enter__(self) -> "MqttPublisher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_connected(self, timeout: float) -> bool:
        """For tests and the CLI: True once connected (and the discovery configs sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected:
                return True
            time.sleep(0.02)
        return self._connected

    def wait_idle(self, timeout: float) -> bool:
        """For tests and the CLI: True once every queued event was acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._events and not self._in_flight and not self._dirty and self._connected:
                    return True
            time.sleep(0.02)
        return False

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        delay = self.settings.reconnect_min_seconds
        while not self._stop.is_set():
            try:
                self._connect()
            except EdgeError as exc:
                self._failed(str(exc), delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.settings.reconnect_max_seconds)
                continue
            except Exception as exc:  # a bug must not kill the thread: report, back off, retry
                log.exception("mqtt: unexpected error while connecting")
                self._failed(f"unexpected error: {exc}", delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.settings.reconnect_max_seconds)
                continue
            delay = self.settings.reconnect_min_seconds
            self._serve()
        self._state = "stopped"

    def _failed(self, message: str, delay: float) -> None:
        if message != self._last_error:
            log.warning("mqtt: %s; retrying in %.1f s", message, delay)
        self._last_error = message
        self._state = "disconnected"
        self._retry_at = time.monotonic() + delay

    def _connect(self) -> None:
        self._state = "connecting"
        client = _client.make_client(self.settings, will=(self.topics.availability, OFFLINE))
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.on_publish = self._acknowledged
        client.on_message = self._message
        client.on_disconnect = self._disconnected
        _client.connect(client, self.settings, cancel=self._stop)
        self._client = client
        self._connected = True
        self._connected_since = self.clock()
        self._retry_at = None
        self.connections += 1
        self._state = "connected"
        if self._last_error or self.connections > 1:
            log.info("mqtt: connected to %s", self.settings.broker)
        self._last_error = ""
        client.subscribe([(self.topics.lock_command, 1), (f"{self.settings.discovery_prefix}/status", 1)])
        for topic, payload in discovery.messages(self.settings):
            client.publish(topic, payload, qos=1, retain=True)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        with self._lock:
            self._dirty = set(self._states)

    def _serve(self) -> None:
        """Publish what is waiting and run paho's loop until the connection ends or we stop."""
        client = self._client
        assert client is not None, "_serve runs after a successful _connect"
        while not self._stop.is_set() and self._connected:
            self._flush(client)
            rc = client.loop(timeout=LOOP_SECONDS)
            if rc != paho.MQTT_ERR_SUCCESS and self._connected:
                self._lost(f"connection lost ({paho.error_string(rc)})")
        if self._stop.is_set() and self._connected:
            deadline = time.monotonic() + 2.0          # the last events (service_stop's companions) go out first
            while self._connected and time.monotonic() < deadline and (self._events or self._in_flight
                                                                        or self._dirty):
                self._flush(client)
                if client.loop(timeout=LOOP_SECONDS) != paho.MQTT_ERR_SUCCESS:
                    break
            goodbye = client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            deadline = time.monotonic() + 2.0
            while (self._in_flight or not goodbye.is_published()) and time.monotonic() < deadline:
                if client.loop(timeout=LOOP_SECONDS) != paho.MQTT_ERR_SUCCESS:
                    break
            client.disconnect()
            self._connected = False
        self._requeue()
        self._client = None

    def _flush(self, client: paho.Client) -> None:
        with self._lock:
            states = [(t, self._states[t]) for t in self._dirty]
            self._dirty.clear()
            face, self._face = self._face, None
            room = MAX_IN_FLIGHT - len(self._in_flight)
            # Copies: an event stays in the queue until it is in flight, so it is always counted somewhere.
            batch = list(itertools.islice(self._events, max(0, room)))
        for topic, payload in states:
            client.publish(topic, payload, qos=1, retain=True)
        if face is not None:
            client.publish(self.topics.face, face, qos=0, retain=False)
        for message in batch:
            info = client.publish(message.topic, message.payload, qos=1, retain=False)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                with self._lock:  # not sent: it and the rest are still queued, in order
                    self._dirty.update(t for t, _ in states)
                self._lost(f"publish failed ({paho.error_string(info.rc)})")
                return
            with self._lock:
                if self._events and self._events[0] is message:
                    self._events.popleft()      # (unless a full queue dropped it meanwhile)
                self._in_flight[info.mid] = message

    def _requeue(self) -> None:
        """Events the broker never acknowledged go back to the front of the queue, oldest first."""
        with self._lock:
            pending = sorted(self._in_flight.values(), key=lambda m: m.seq)
            self._in_flight.clear()
            self._events.extendleft(reversed(pending))

    def _lost(self, message: str) -> None:
        self._connected = False
        self._state = "disconnected"
        self._last_error = message
        log.warning("mqtt: %s; %d events waiting", message, len(self._events) + len(self._in_flight))

    # ------------------------------------------------------------------ paho callbacks (on this thread)
    def _acknowledged(self, _client, _userdata, mid, _reason_code, _properties) -> None:
        with self._lock:
            if self._in_flight.pop(mid, None) is not None:
                self.sent_events += 1

    def _disconnected(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self._connected and not self._stop.is_set():
            self._lost(f"disconnected by the broker ({reason_code})")

    def _message(self, _client, _userdata, message) -> None:
        if message.topic == f"{self.settings.discovery_prefix}/status":
            if message.payload == b"online" and self._client is not None:
                # Home Assistant restarted: send the configs and states again.
                for topic, payload in discovery.messages(self.settings):
                    self._client.publish(topic, payload, qos=1, retain=True)
                with self._lock:
                    self._dirty = set(self._states)
            return
        if message.topic != self.topics.lock_command:
            return
        if message.retain:
            log.warning("mqtt: ignored a retained lock command (a stale command must not open the door)")
            return
        command = discovery.parse_lock_command(message.payload)
        if command.action == "LOCK":
            self._call(self.on_lock)
            return
        verdict = self.gate.judge(command)
        if verdict.accepted:
            log.info("mqtt: remote unlock accepted")
            self._call(self.on_unlock)
        else:
            log.warning("mqtt: remote unlock refused: %s", verdict.reason)
            self._call(self.on_unlock_refused, verdict.reason)

    @staticmethod
    def _call(callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("mqtt: the command handler failed")
