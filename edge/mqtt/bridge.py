"""The door's events, as the MQTT publisher understands them.

:class:`DoorBridge` is an event listener (``service.events.add_listener(bridge)``): it reads an event's ``kind``,
``time``, ``user``, ``similarity`` and ``details`` and calls the publisher's non-blocking methods. It follows the
relay (``relay`` events, ``details["active"]``) and the door contact (``door_opened``/``door_closed``/
``door_held_open``) to publish the lock as LOCKED, UNLOCKED or JAMMED: the door opened while the relay was
locked. A door opened during an unlock that is still open when the relay drops is an ordinary entry (LOCKED;
the held-open alarm covers a door left open).
"""

from __future__ import annotations

from typing import Any, Callable

from .publisher import MqttPublisher

DECISIONS = ("grant", "deny", "unknown", "lockout", "spoof")


class DoorBridge:
    def __init__(self, publisher: MqttPublisher, *, unlocked: bool = False, door_open: bool | None = None,
                 held_open: bool = False, face: Callable[[], bytes | None] | None = None):
        """``face`` returns the latest decision's face crop as JPEG (only with ``mqtt.publish_faces``)."""
        self.publisher = publisher
        self.face = face
        self.unlocked = unlocked
        self.door_open = door_open
        self.held_open = held_open
        self.opened_while_locked = bool(door_open) and not unlocked   # found open at start: treat as forced
        self._publish()

    def _publish(self) -> None:
        self.publisher.set_door(unlocked=self.unlocked, door_open=self.door_open, held_open=self.held_open,
                                opened_while_locked=self.opened_while_locked)

    def __call__(self, event: Any) -> None:
        kind = event.kind
        details = dict(getattr(event, "details", None) or {})
        if kind in DECISIONS:
            extra = {k: details[k] for k in ("reason", "votes", "frames") if k in details}
            self.publisher.publish_event(kind, user=event.user, similarity=event.similarity, at=event.time,
                                         **extra)
            jpeg = self.face() if self.face is not None else None
            if jpeg:
                self.publisher.publish_face(jpeg)
            return
        if kind == "relay":
            self.unlocked = bool(details.get("active"))
        elif kind == "door_opened":
            self.door_open, self.opened_while_locked = True, not self.unlocked
        elif kind == "door_closed":
            self.door_open, self.held_open, self.opened_while_locked = False, False, False
        elif kind == "door_held_open":
            self.door_open, self.held_open = True, True
        else:
            return
        self._publish()
