"""Door health buckets: frames per second and time per frame, counters fed by real EventHub events, and a
history that survives a restart."""

from __future__ import annotations

import json

from edge.events import Event, EventHub
from edge.health import HealthRecorder

T0 = 1_764_000_000.0 - (1_764_000_000.0 % 300)      # the start of a five-minute bucket


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_frames_give_fps_and_milliseconds_per_frame_per_bucket():
    clock = Clock(T0)
    health = HealthRecorder(clock=clock)
    for i in range(11):                                   # 10 fps for one second, 40 ms each
        health.frame(0.040, now=T0 + i * 0.1)
    for i in range(3):                                    # a later bucket: 1 fps, 100 ms
        health.frame(0.100, now=T0 + 600 + i)
    clock.now = T0 + 700
    series = health.series()
    assert len(series.fps) == 288 and series.starts[-1] == T0 + 600
    assert series.fps[-3] == 10.0 and series.ms_per_frame[-3] == 40.0
    assert series.fps[-2] is None and series.ms_per_frame[-2] is None    # nothing measured: a gap, not zero
    assert series.fps[-1] == 1.0 and series.ms_per_frame[-1] == 100.0


def test_counters_come_from_the_event_hub():
    clock = Clock(T0)
    health = HealthRecorder(clock=clock)
    hub = EventHub(clock=clock)
    hub.add_listener(health.on_event)
    hub.emit("relay", active=True, reason="grant alice")
    hub.emit("relay", active=False, reason="pulse ended")
    hub.emit("camera_failure", error="unplugged")
    hub.emit("door_held_open")
    hub.emit("grant", user="alice")
    hub.close()
    assert health.series().totals() == {"camera_restarts": 1, "relay_operations": 1, "held_open_alarms": 1}


def test_history_older_than_a_day_is_dropped_and_the_rest_survives_a_restart(tmp_path):
    clock = Clock(T0)
    path = tmp_path / "health.json"
    health = HealthRecorder(path=path, clock=clock)
    health.count("relay_operations")
    clock.now = T0 + 3600
    health.frame(0.05)
    health.on_event(Event("door_held_open", time=clock.now))
    health.save()
    assert "alice" not in path.read_text() and json.loads(path.read_text())
    again = HealthRecorder(path=path, clock=clock)
    assert again.series().totals() == {"camera_restarts": 0, "relay_operations": 1, "held_open_alarms": 1}
    clock.now = T0 + 86400 + 300                             # the first relay operation is a day old now
    assert again.series().totals()["relay_operations"] == 0
    path.write_text("{not json")
    assert HealthRecorder(path=path, clock=clock).series().totals()["held_open_alarms"] == 0
