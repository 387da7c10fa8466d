"""What the running daemon reports about itself, as typed data. Wording is the reader's job: the dashboard
(:func:`edge.web.display.status_rows`) and systemd's ``STATUS=`` line each phrase it their own way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CameraStatus:
    state: str              # "none" | "starting" | "running" | "retrying" | "stopped"
    source: str             # the source's name ("picamera", "opencv:0", "folder", "none")
    fps: float = 0.0        # frames per second delivered by the camera
    error: str = ""         # the last failure, while retrying
    retry_in: float = 0.0   # seconds until the next attempt, while retrying
    frames: int = 0         # frames delivered since start


@dataclass(frozen=True)
class PinStatus:
    name: str               # "relay", "green_led", "exit_button", "door_contact", ...
    pin: int                # BCM number
    state: str              # "on"/"off", "pressed"/"released", "open"/"closed"


@dataclass(frozen=True)
class LastDecision:
    kind: str               # grant, deny, unknown, lockout, remote_unlock
    user: str | None        # user name (an admin's for remote_unlock)
    similarity: float | None
    time: float             # wall clock
    user_id: str | None = None   # whose decision it was: a member sees only their own


@dataclass(frozen=True)
class MqttStatus:
    state: str              # "connected" | "connecting" | "disconnected" | "stopped"
    broker: str             # mqtt://host:port or mqtts://host:port
    last_error: str = ""    # why the last attempt failed, while disconnected
    retry_in: float | None = None
    queued: int = 0         # events waiting for the broker
    dropped: int = 0        # events dropped because the queue was full
    sent: int = 0           # events the broker acknowledged


@dataclass(frozen=True)
class Status:
    camera: CameraStatus
    unlocked: bool                  # relay energised
    door_open: bool | None          # None without a door contact
    held_open: bool                 # door open too long: alarm
    pins: tuple[PinStatus, ...]
    simulated_pins: bool            # gpiozero MockFactory: no real hardware
    fps: float                      # frames the door loop processed per second
    last_decision: LastDecision | None
    users: int                      # active users in the gallery
    model: str                      # engine.model_id
    uptime_seconds: float
    cooldown_seconds: float = 0.0   # left of the cooldown after a grant
    locked_faces: int = 0           # faces locked out right now
    mqtt: MqttStatus | None = None  # None when [mqtt] is disabled
    disk_free_mb: float | None = None   # free space where the database and log live
    disk_low: bool = False          # below [store] low_disk_mb
    log_pending: int = 0            # access log events waiting in memory for disk space
    liveness_mode: str = "off"      # [liveness] mode: off, passive, strict
    liveness_state: str = ""        # the current face track's verdict: live, spoof, undecided ("" no track)
    liveness_reason: str = ""       # why, in one sentence
