"""Reading the access log for pages: time formatting, filtering, CSV export without formula injection."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any

from ..accesslog import safe_cell, write_csv
from ..eventfaces import KINDS as FACE_KINDS
from ..liveview import camera_available
from ..status import MqttStatus, Status

logger = logging.getLogger(__name__)

DECISIONS = FACE_KINDS           # the door's decisions: the events with a face thumbnail


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


def recent_events(log, *, kinds=None, user=None, limit=10, owner=None) -> list[dict]:
    """The newest ``limit`` events (newest first), optionally of some kinds, one user name, or one ``owner``
    (a User: :func:`is_own`)."""
    out = []
    for event in log.events(user=user or None, newest_first=True):
        if kinds and event.get("kind") not in kinds:
            continue
        if owner is not None and not is_own(event, owner):
            continue
        out.append(event)
        if len(out) == limit:
            break
    return out


def events_csv(events: list[dict]) -> str:
    """The access log's one CSV export (:func:`edge.accesslog.write_csv`, shared with ``edge-face log --csv``)."""
    buf = io.StringIO()
    write_csv(events, buf)
    return buf.getvalue()


def status_rows(status: Status, viewer: Any = None) -> dict[str, str]:
    """The daemon's :class:`~edge.status.Status` in the dashboard's words (label -> text).

    ``viewer``: the logged-in user; a member (not an admin) sees the last decision only if it was their own, and
    neither the pins nor the user count (issue 11: members never see other people's decisions)."""
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
    member = viewer is not None and getattr(viewer, "role", "member") != "admin"
    if last is not None and member and last.user_id != viewer.id:
        last = None
    if last is not None:
        when = dt.datetime.fromtimestamp(last.time).strftime("%H:%M:%S")
        score = f" ({last.similarity:.3f})" if last.similarity is not None else ""
        last_text = f"{last.kind} {last.user or ''}{score} at {when}".replace("  ", " ")
    if member:
        return {"camera": camera, "door": door, "fps": f"{status.fps:.1f}", "your_last_visit": last_text}
    liveness = "OFF: photographs and screens are not refused" if status.liveness_mode == "off" \
        else status.liveness_mode
    if status.liveness_mode != "off" and status.liveness_state:
        liveness += f"; face in view: {status.liveness_state} ({status.liveness_reason})"
    rows = {"camera": camera, "door": door, "pins": pins + (" (simulated)" if status.simulated_pins else ""),
            "fps": f"{status.fps:.1f}", "last_decision": last_text, "users": str(status.users),
            "model": status.model, "liveness": liveness}
    if status.disk_free_mb is not None:
        rows["disk"] = f"{status.disk_free_mb:.0f} MiB free" + \
            (" - LOW: free some space before the database and access log cannot be saved" if status.disk_low else "")
    if status.log_pending:
        rows["access_log"] = f"the disk is full: {status.log_pending} events wait in memory to be written"
    if status.mqtt is not None:
        rows["mqtt"] = mqtt_text(status.mqtt)
    return rows


def is_own(event: dict, user: Any) -> bool:
    """Whether ``event`` is about ``user``: by user id; an event written before ids were recorded counts only if
    it names the user and is not older than the account (a new account must not inherit a deleted one's events)."""
    if event.get("user_id"):
        return event["user_id"] == user.id
    return event.get("user") == user.username and float(event.get("time") or 0) >= user.created


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


def camera_state(web) -> tuple[bool, str]:
    """(whether a live picture can come, and if not, why in a few words) for the dashboard and the live view.
    A missing camera or daemon is a state: nothing here logs an error."""
    if web.controller is None:
        return False, "The door service is not running"
    try:
        camera = web.controller.status().camera
    except Exception:
        logger.warning("web: the door service did not report its camera")
        return False, "The door service did not answer"
    if camera_available(camera.state):
        return True, ""
    return False, "No camera" if camera.state == "none" else f"The camera is {camera.state}"
