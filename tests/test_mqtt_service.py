"""The whole door with MQTT on: real model, real photographs played as a camera, MockFactory pins, a real
encrypted store and access log, and a real mosquitto started by the test. What Home Assistant would see."""

from __future__ import annotations

import json
import time

from gpiozero.pins.mock import MockFactory

from edge.camera import FolderSource
from mqtt_broker import Listener, broker, persistent_broker  # noqa: F401  (fixtures)
from web_fixtures import PASSWORD, client, login
from edge.web import create_app
from test_service import RELAY, cast, make_backend, make_service, wait_until, write_frames  # noqa: F401

BASE = "edge-face/door1"
CODE = "2468"


def mqtt_section(b, **extra):
    values = {"enabled": True, "host": "127.0.0.1", "port": b.port, "client_id": "edge-face-door1",
              "base_topic": BASE, "reconnect_min_seconds": 0.1, "reconnect_max_seconds": 0.5}
    values.update(extra)
    return values


def events(listener) -> list[dict]:
    return [json.loads(p) for p in listener.on(f"{BASE}/event")]


def test_an_enrolled_face_gives_grant_and_the_lock_goes_unlocked_and_back(tmp_path, cast, engine, broker):
    person = cast["enrolled"][0]
    cfg, store, log = make_backend(tmp_path, cast, engine, mqtt=mqtt_section(broker),
                                   decision={"unlock_seconds": 0.6, "cooldown_seconds": 30.0})
    folder = write_frames(tmp_path / "cam", person["probe"], repeat=4)
    listener = Listener(broker)
    factory = MockFactory()
    svc = make_service(cfg, store, log, engine, FolderSource(folder=folder, fps=15), factory).start()
    try:
        assert wait_until(lambda: [e for e in events(listener) if e["event_type"] == "grant"], timeout=30)
        assert wait_until(lambda: listener.on(f"{BASE}/lock/state")[-1:] == [b"LOCKED"]
                          and b"UNLOCKED" in listener.on(f"{BASE}/lock/state"), timeout=10)
        assert svc.status().mqtt.state == "connected"
    finally:
        svc.close()
    states = listener.on(f"{BASE}/lock/state")
    assert states[0] == b"LOCKED" and states[states.index(b"UNLOCKED"):] == [b"UNLOCKED", b"LOCKED"]
    grant = [e for e in events(listener) if e["event_type"] == "grant"][0]
    logged = [e for e in log.events() if e["kind"] == "grant"][0]
    assert grant["user"] == person["name"].lower() == logged["user"]
    assert grant["similarity"] == round(logged["similarity"], 4)
    assert grant["timestamp"] == round(logged["time"], 3)           # the time it happened, not when it was sent
    assert listener.on(f"{BASE}/last_granted/state")[-1] == person["name"].lower().encode()
    assert listener.wait_for(lambda m: listener.on(f"{BASE}/availability")[-1:] == [b"offline"])
    assert json.loads(listener.on("homeassistant/lock/edge-face-door1/lock/config")[0])["unique_id"] == \
        "edge-face-door1_lock"
    # publish_faces is off: the camera's config is the empty message that removes the entity.
    assert set(listener.on("homeassistant/camera/edge-face-door1/face/config")) == {b""}
    listener.close()


def test_a_stranger_gives_unknown_and_the_face_crop_when_asked(tmp_path, cast, engine, broker):
    cfg, store, log = make_backend(tmp_path, cast, engine, mqtt=mqtt_section(broker, publish_faces=True))
    folder = write_frames(tmp_path / "cam", cast["strangers"][:4], repeat=8)
    listener = Listener(broker)
    factory = MockFactory()
    svc = make_service(cfg, store, log, engine, FolderSource(folder=folder, fps=15, loop=False), factory).start()
    try:
        assert wait_until(lambda: [e for e in events(listener) if e["event_type"] == "unknown"], timeout=30)
        assert wait_until(lambda: listener.on(f"{BASE}/face"), timeout=10)
    finally:
        svc.close()
    unknown = [e for e in events(listener) if e["event_type"] == "unknown"][0]
    assert unknown["user"] is None and unknown["similarity"] is not None
    assert "grant" not in {e["event_type"] for e in events(listener)}
    assert [s.state for s in factory.pin(RELAY).states] == [False]
    assert listener.on(f"{BASE}/face")[0][:2] == b"\xff\xd8"                    # a JPEG
    listener.close()


def test_remote_unlock_from_home_assistant_is_checked_and_logged(tmp_path, cast, engine, broker):
    command = f"{BASE}/lock/set"
    cfg, store, log = make_backend(tmp_path, cast, engine, decision={"unlock_seconds": 0.5},
                                   mqtt=mqtt_section(broker, allow_remote_unlock=True, code=CODE))
    listener = Listener(broker)
    factory = MockFactory()
    svc = make_service(cfg, store, log, engine, None, factory).start()
    relay = factory.pin(RELAY)
    try:
        assert wait_until(lambda: svc.status().mqtt.state == "connected")
        # The admin page's settings show the connection the running service has.
        store.add_user(username="root", email="root@example.org", password=PASSWORD, role="admin", status="active")
        admin = client(create_app(cfg, store=store, log=log, engine=None, controller=svc))
        login(admin, "root")
        page = admin.get("/settings").text
        assert f"connected to mqtt://127.0.0.1:{broker.port}" in page and CODE not in page
        listener.publish(command, json.dumps({"action": "UNLOCK", "code": "1111"}))
        assert wait_until(lambda: [e for e in log.events() if e["kind"] == "remote_unlock"])
        assert [s.state for s in relay.states] == [False]                         # wrong code: nothing moved
        listener.publish(command, json.dumps({"action": "UNLOCK", "code": CODE}))
        assert wait_until(lambda: relay.state, timeout=10)
        assert wait_until(lambda: not relay.state, timeout=5)
    finally:
        svc.close()
    remote = [e for e in log.events() if e["kind"] == "remote_unlock"]
    assert [(e["decision"], e["source"], e.get("reason")) for e in remote] == [("deny", "mqtt", "wrong code"),
                                                                             ("grant", "mqtt", None)]
    assert CODE not in json.dumps(list(log.events())) and "1111" not in json.dumps(list(log.events()))
    listener.close()


def test_remote_unlock_disabled_does_nothing_and_is_logged(tmp_path, cast, engine, broker):
    cfg, store, log = make_backend(tmp_path, cast, engine, mqtt=mqtt_section(broker))
    listener = Listener(broker)
    factory = MockFactory()
    svc = make_service(cfg, store, log, engine, None, factory).start()
    try:
        assert wait_until(lambda: svc.status().mqtt.state == "connected")
        listener.publish(f"{BASE}/lock/set", json.dumps({"action": "UNLOCK", "code": CODE}))
        assert wait_until(lambda: [e for e in log.events() if e["kind"] == "remote_unlock"])
    finally:
        svc.close()
    [refused] = [e for e in log.events() if e["kind"] == "remote_unlock"]
    assert refused["decision"] == "deny" and "disabled" in refused["reason"]
    assert [s.state for s in factory.pin(RELAY).states] == [False]
    listener.close()


def test_the_broker_dies_mid_run_the_door_goes_on_and_no_event_is_lost(tmp_path, cast, engine, persistent_broker):
    """Kill mosquitto while people come and go; the door keeps deciding and opening, and every decision made
    while the broker was away reaches Home Assistant (a persistent session, as HA keeps) with the time it
    happened."""
    broker = persistent_broker
    person = cast["enrolled"][0]
    cfg, store, log = make_backend(tmp_path, cast, engine, mqtt=mqtt_section(broker),
                                   decision={"unlock_seconds": 0.5, "cooldown_seconds": 1.0})
    # Each photograph stays 1.6 s in view (15 fps), long enough for a vote even on a busy machine.
    folder = write_frames(tmp_path / "cam", person["probe"][:2] + cast["strangers"][:2], repeat=24)
    home = Listener(broker, session="home-assistant")
    broker.wait_saved()                                    # the subscription survives the crash
    factory = MockFactory()
    relay = factory.pin(RELAY)
    svc = make_service(cfg, store, log, engine, FolderSource(folder=folder, fps=15), factory).start()
    try:
        refusals = {"deny", "unknown", "lockout"}
        assert wait_until(lambda: "grant" in {e["event_type"] for e in events(home)}, timeout=60)
        broker.stop()                                      # SIGKILL
        down_at = time.time()
        frames_before, pulses_before = svc.processed_frames, len(relay.states)

        def door_went_on() -> bool:
            """Without the broker the door keeps deciding and opening (however slowly a loaded machine runs)."""
            since = [e["kind"] for e in log.events() if e["time"] > down_at]
            return (since.count("grant") >= 2 and bool(refusals & set(since))
                    and svc.processed_frames > frames_before + 30 and len(relay.states) > pulses_before)

        assert wait_until(door_went_on, timeout=180)
        assert svc.status().mqtt.state != "connected" and svc.status().mqtt.queued > 0
        up_at = time.time()
        broker.start()
        assert wait_until(lambda: svc.status().mqtt.state == "connected" and svc.status().mqtt.queued == 0,
                          timeout=30)
        missed = [e for e in log.events() if e["kind"] in ("grant", "deny", "unknown", "lockout")
                  and down_at < e["time"] < up_at]
        assert len(missed) >= 3

        def not_received(received: list[dict]) -> list[dict]:
            return [entry for entry in missed if not any(
                e["event_type"] == entry["kind"] and e["user"] == entry["user"]
                and e["timestamp"] == round(entry["time"], 3) for e in received)]

        home.wait_for(lambda m: not not_received(events(home)), seconds=60)
    finally:
        svc.close()
    assert not_received(events(home)) == []
    assert svc.mqtt.status()["dropped"] == 0
    home.close()
