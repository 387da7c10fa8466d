"""Reading the access log for pages: time formatting, filtering, CSV export without formula injection."""

from __future__ import annotations

import datetime as dt
import io

from ..accesslog import safe_cell, write_csv
from ..status import MqttStatus, Status

RESULT_KINDS = ("grant", "deny", "unknown")


def event_time(value) -> dt.datetime | None:
    """Events carry a UNIX time or an ISO string; both become a local, timezone-aware datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value).astimezone()
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.astimezone()
    return None


def format_time(value) -> str:
    when = event_time(value)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else str(value or "")


def format_similarity(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else ""


def recent_events(log, *, kinds=None, user=None, limit=10) -> list[dict]:
    """The newest ``limit`` events (newest first), optionally of some kinds or one user."""
    out = []
    for event in log.events(user=user or None, newest_first=True):
        if kinds and event.get("kind") not in kinds:
            continue
        out.append(event)
        if len(out) == limit:
            break
    return out


def filter_events(log, *, user: str = "", result: str = "", date_from: dt.date | None = None,
                  date_to: dt.date | None = None) -> list[dict]:
    """All matching events, newest first. ``result`` is an event kind (grant, deny, ...)."""
    since = None
    if date_from is not None:
        since = dt.datetime.combine(date_from, dt.time.min).astimezone()
    out = []
    for event in log.events(since=since, user=user or None):
        if user and event.get("user") != user:
            continue
        if result and event.get("kind") != result:
            continue
        if date_from or date_to:
            when = event_time(event.get("time"))
            if when is None:
                continue
            day = when.date()
            if (date_from and day < date_from) or (date_to and day > date_to):
                continue
        out.append(event)
    out.reverse()
    return out


def events_csv(events: list[dict]) -> str:
    """The access log's one CSV export (:func:`edge.accesslog.write_csv`, shared with ``edge-face log --csv``)."""
    buf = io.StringIO()
    write_csv(events, buf)
    return buf.getvalue()


def status_rows(status: Status) -> dict[str, str]:
    """The daemon's :class:`~edge.status.Status` in the dashboard's words (label -> text)."""
    cam = status.camera
    camera = cam.state if cam.state != "running" else f"running ({cam.source}, {cam.fps:.0f} fps)"
    if cam.state == "retrying":
        camera = f"failing, retrying in {cam.retry_in:g} s: {cam.error}"
    door = "UNLOCKED" if status.unlocked else "locked"
    if status.door_open is not None:
        door += ", door open" if status.door_open else ", door shut"
    if status.held_open:
        door += " - HELD OPEN (alarm)"
    pins = ", ".join(f"{p.name} GPIO{p.pin} {p.state}" for p in status.pins)
    last_text = "none yet"
    last = status.last_decision
    if last is not None:
        when = dt.datetime.fromtimestamp(last.time).strftime("%H:%M:%S")
        score = f" ({last.similarity:.3f})" if last.similarity is not None else ""
        last_text = f"{last.kind} {last.user or ''}{score} at {when}".replace("  ", " ")
    rows = {"camera": camera, "door": door, "pins": pins + (" (simulated)" if status.simulated_pins else ""),
            "fps": f"{status.fps:.1f}", "last_decision": last_text, "users": str(status.users),
            "model": status.model}
    if status.mqtt is not None:
        rows["mqtt"] = mqtt_text(status.mqtt)
    return rows


def mqtt_text(mqtt: MqttStatus | None) -> str:
    """The MQTT connection in words (dashboard, settings page); ``None`` means [mqtt] is off."""
    if mqtt is None:
        return "off (mqtt.enabled = false)"
    waiting = f"; {mqtt.queued} events waiting" if mqtt.queued else ""
    dropped = f"; {mqtt.dropped} events dropped (queue full)" if mqtt.dropped else ""
    if mqtt.state == "connected":
        return f"connected to {mqtt.broker}; {mqtt.sent} events sent{waiting}{dropped}"
    if mqtt.state == "connecting":
        return f"connecting to {mqtt.broker}{waiting}"
    retry = f", retrying in {mqtt.retry_in:g} s" if mqtt.retry_in is not None else ""
    error = f": {mqtt.last_error}" if mqtt.last_error else ""
    return f"{mqtt.state} from {mqtt.broker}{retry}{error}{waiting}{dropped}"
