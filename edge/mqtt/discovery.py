"""Home Assistant MQTT discovery: the topics the door uses and the retained config message of each entity.

Schema followed (Home Assistant's MQTT integration): config topics are
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` with ids of ``[a-zA-Z0-9_-]``; every entity
names the one device (identifiers, name, model, manufacturer, sw_version) and the shared availability topic,
where the broker publishes the retained last-will ``offline``. Per platform:

* ``lock``: ``command_topic`` (required), ``state_topic`` with ``LOCKED``/``UNLOCKED``/``JAMMED``, ``code_format``
  (a regular expression; Home Assistant then asks for a code) and ``command_template`` rendered with ``value``
  (``LOCK``/``UNLOCK``) and ``code``;
* ``binary_sensor``: ``state_topic`` with ``ON``/``OFF`` and a ``device_class`` (``door``: ON means open;
  ``problem`` for the held-open alarm);
* ``sensor``: ``state_topic``, optional ``unit_of_measurement``/``state_class``/``entity_category``;
* ``event``: ``state_topic`` with a JSON object whose ``event_type`` is one of ``event_types``; the other keys
  become attributes. Home Assistant ignores *retained* event messages, so events are never retained;
* ``camera``: ``topic`` carrying a whole JPEG file.

Unique ids are ``<node_id>_<object_id>``: the node id comes from the client id (default ``edge-face-<hostname>``),
so they stay the same across restarts and Home Assistant keeps the entities' names, areas and history. The
entity id Home Assistant first gives an entity is ``default_entity_id`` (``<component>.<unique id as a slug>``,
e.g. ``lock.edge_face_frontdoor_lock``); the payload key ``object_id`` that did this before is deprecated since
Home Assistant 2025.10 and no longer used from 2026.4, so it is not sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .. import __version__
from .settings import MqttSettings

EVENT_TYPES = ("grant", "deny", "unknown", "lockout", "spoof", "test")
LOCKED, UNLOCKED, JAMMED = "LOCKED", "UNLOCKED", "JAMMED"
LOCK_STATES = (LOCKED, UNLOCKED, JAMMED)
ONLINE, OFFLINE = "online", "offline"
MODEL = "edge-face face-unlock door"
MANUFACTURER = "edge-face"


@dataclass(frozen=True)
class Topics:
    """Every topic under the base topic, in one place."""

    base: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def lock_state(self) -> str:
        return f"{self.base}/lock/state"

    @property
    def lock_command(self) -> str:
        return f"{self.base}/lock/set"

    @property
    def door(self) -> str:
        return f"{self.base}/door/state"

    @property
    def held_open(self) -> str:
        return f"{self.base}/held_open/state"

    @property
    def last_granted(self) -> str:
        return f"{self.base}/last_granted/state"

    @property
    def last_similarity(self) -> str:
        return f"{self.base}/last_similarity/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def face(self) -> str:
        return f"{self.base}/face"

    @property
    def fps(self) -> str:
        return f"{self.base}/fps/state"

    @property
    def camera_state(self) -> str:
        return f"{self.base}/camera/state"


def topics(settings: MqttSettings) -> Topics:
    return Topics(settings.topic)


def config_topic(settings: MqttSettings, component: str, object_id: str) -> str:
    return f"{settings.discovery_prefix}/{component}/{settings.node_id}/{object_id}/config"


def unique_id(settings: MqttSettings, object_id: str) -> str:
    return f"{settings.node_id}_{object_id}"


def default_entity_id(settings: MqttSettings, component: str, object_id: str) -> str:
    """``<component>.<slug>``: the unique id in Home Assistant's entity-id spelling (lower case, every run of
    other characters one ``_``), the same id the deprecated ``object_id`` gave."""
    return f"{component}." + re.sub(r"[^a-z0-9]+", "_", unique_id(settings, object_id).lower()).strip("_")


def device(settings: MqttSettings) -> dict:
    return {"identifiers": [settings.node_id], "name": settings.name, "model": MODEL,
            "manufacturer": MANUFACTURER, "sw_version": __version__}


def code_format(code: str) -> str:
    """A digits-only code gets Home Assistant's number pad; anything else a text field."""
    return r"^\d+$" if code.isdigit() else r"^.+$"


# The lock command as JSON, so the code reaches the door intact whatever characters it has.
COMMAND_TEMPLATE = '{{ {"action": value, "code": code} | to_json }}'


def entities(settings: MqttSettings) -> list[tuple[str, str, dict | None]]:
    """(component, object_id, config) for every entity; config ``None`` removes an entity that is switched off
    (an empty retained message deletes it in Home Assistant)."""
    t = topics(settings)
    # name None: the lock is the device's main feature and takes the device's name.
    lock = {"name": None, "state_topic": t.lock_state, "command_topic": t.lock_command,
            "state_locked": LOCKED, "state_unlocked": UNLOCKED, "state_jammed": JAMMED,
            "payload_lock": "LOCK", "payload_unlock": "UNLOCK", "command_template": COMMAND_TEMPLATE,
            "optimistic": False, "qos": 1, "retain": False}
    if settings.allow_remote_unlock and settings.code:
        lock["code_format"] = code_format(settings.code)
    rows: list[tuple[str, str, dict | None]] = [
        ("lock", "lock", lock),
        ("binary_sensor", "door", {"name": "Door", "state_topic": t.door, "payload_on": "ON",
                                   "payload_off": "OFF", "device_class": "door"}),
        ("binary_sensor", "held_open", {"name": "Held open", "state_topic": t.held_open, "payload_on": "ON",
                                        "payload_off": "OFF", "device_class": "problem"}),
        ("sensor", "last_granted", {"name": "Last person granted", "state_topic": t.last_granted,
                                    "icon": "mdi:account-check"}),
        ("sensor", "last_similarity", {"name": "Last similarity", "state_topic": t.last_similarity,
                                       "state_class": "measurement", "suggested_display_precision": 3,
                                       "icon": "mdi:face-recognition"}),
        ("event", "access", {"name": "Access", "state_topic": t.event, "event_types": list(EVENT_TYPES),
                             "icon": "mdi:door"}),
        ("camera", "face", {"name": "Latest face", "topic": t.face} if settings.publish_faces else None),
        ("sensor", "fps", {"name": "Frame rate", "state_topic": t.fps, "unit_of_measurement": "fps",
                           "state_class": "measurement", "entity_category": "diagnostic", "icon": "mdi:speedometer"}),
        ("sensor", "camera", {"name": "Camera", "state_topic": t.camera_state, "entity_category": "diagnostic",
                              "icon": "mdi:cctv"}),
    ]
    out = []
    for component, object_id, config in rows:
        if config is not None:
            config = dict(config, unique_id=unique_id(settings, object_id),
                          default_entity_id=default_entity_id(settings, component, object_id),
                          availability_topic=t.availability,
                          payload_available=ONLINE, payload_not_available=OFFLINE, device=device(settings),
                          origin={"name": "edge-face", "sw_version": __version__})
        out.append((component, object_id, config))
    return out


def messages(settings: MqttSettings) -> list[tuple[str, bytes]]:
    """(topic, payload) of every retained discovery message; an empty payload removes an entity."""
    return [(config_topic(settings, component, object_id),
             b"" if config is None else json.dumps(config, separators=(",", ":")).encode())
            for component, object_id, config in entities(settings)]


_ACTION_RE = re.compile(r"^(LOCK|UNLOCK)$")


@dataclass(frozen=True)
class LockCommand:
    action: str           # "LOCK" | "UNLOCK" | "" (unreadable)
    code: str | None


def parse_lock_command(payload: bytes) -> LockCommand:
    """The JSON our command template produces, or a bare ``LOCK``/``UNLOCK`` (no code)."""
    text = payload.decode("utf-8", "replace").strip()
    if _ACTION_RE.match(text):
        return LockCommand(text, None)
    try:
        data = json.loads(text)
    except ValueError:
        return LockCommand("", None)
    if not isinstance(data, dict):
        return LockCommand("", None)
    action = data.get("action")
    code = data.get("code")
    return LockCommand(action if isinstance(action, str) and _ACTION_RE.match(action) else "",
                       code if isinstance(code, str) else None)
