"""The MQTT publisher against a real mosquitto started by the test: discovery, events across a broker crash,
remote unlock rules, password and TLS, and bad settings that give a clear error instead of a crash."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from edge.errors import BrokerError, ConfigError
from edge.mqtt import probe
from edge.mqtt.publisher import MqttPublisher
from edge.mqtt.settings import from_dict
from mqtt_broker import (PASSWORD, USER, Broker, Listener, broker, password_broker,  # noqa: F401
                         persistent_broker, tls_broker)

CODE = "4711"


def settings_for(b: Broker, **extra):
    values = {"enabled": True, "host": "127.0.0.1", "port": b.port, "client_id": "edge-face-testdoor",
              "base_topic": "edge-face/testdoor", "reconnect_min_seconds": 0.1, "reconnect_max_seconds": 0.5}
    values.update(extra)
    return from_dict(values)


def events(listener: Listener, topic="edge-face/testdoor/event") -> list[dict]:
    return [json.loads(p) for p in listener.on(topic)]


@pytest.fixture
def listener(broker):
    listen = Listener(broker)
    yield listen
    listen.close()


# ---------------------------------------------------------------------- discovery
def test_discovery_configs_are_retained_valid_and_stable(broker):
    s = settings_for(broker, allow_remote_unlock=True, code=CODE)
    with MqttPublisher(s) as pub:
        assert pub.wait_connected(10)
        pub.set_door(unlocked=False, door_open=False)
        assert pub.wait_idle(10)
    # A listener that arrives later still gets them: they are retained.
    late = Listener(broker, topics=("homeassistant/#", "edge-face/#"))
    try:
        got = late.wait_for(lambda m: len([x for x in m if x[0].startswith("homeassistant/")]) >= 8
                            and late.on("edge-face/testdoor/availability") and late.on("edge-face/testdoor/lock/state"))
        assert got
        configs = {}
        for topic, payload, retained in late.messages:
            if topic.startswith("homeassistant/"):
                assert retained, topic
                configs[topic] = json.loads(payload)        # valid JSON or the test fails here
        by_component = {t.split("/")[1] + "/" + t.split("/")[3]: c for t, c in configs.items()}
        assert set(by_component) == {"lock/lock", "binary_sensor/door", "binary_sensor/held_open",
                                     "sensor/last_granted", "sensor/last_similarity", "event/access",
                                     "sensor/fps", "sensor/camera"}      # no camera: publish_faces is off
        for key, config in by_component.items():
            component, entity = key.split("/")
            # What current Home Assistant reads for the entity id; object_id is deprecated (2025.10) and unused.
            assert config["default_entity_id"] == f"{component}.edge_face_testdoor_{entity}" and \
                "object_id" not in config
            assert config["device"]["identifiers"] == ["edge-face-testdoor"]
            assert config["device"]["sw_version"] and config["device"]["model"] and config["device"]["name"]
            assert config["availability_topic"] == "edge-face/testdoor/availability"
            assert config["unique_id"].startswith("edge-face-testdoor_")
        lock = by_component["lock/lock"]
        assert lock["command_topic"] == "edge-face/testdoor/lock/set"
        assert (lock["state_locked"], lock["state_unlocked"], lock["state_jammed"]) == ("LOCKED", "UNLOCKED",
                                                                                       "JAMMED")
        assert lock["code_format"] == r"^\d+$"
        assert by_component["event/access"]["event_types"] == ["grant", "deny", "unknown", "lockout", "spoof",
                                                               "test"]
        assert by_component["binary_sensor/door"]["device_class"] == "door"
        assert by_component["binary_sensor/held_open"]["device_class"] == "problem"
        # Availability: online while running, the retained "offline" after a clean stop.
        assert late.on("edge-face/testdoor/availability")[-1] == b"offline"
        assert late.on("edge-face/testdoor/lock/state")[-1] == b"LOCKED"
    finally:
        late.close()
    # The same unique ids after a restart of the door (a new publisher, a new listener, what the broker holds).
    with MqttPublisher(s) as again:
        assert again.wait_connected(10)
        assert again.wait_idle(10)
    later = Listener(broker, topics=("homeassistant/#",))
    try:
        assert later.wait_for(lambda m: len(m) >= 8)
        assert {json.loads(p)["unique_id"] for _t, p, _r in later.messages} == \
            {c["unique_id"] for c in configs.values()}
    finally:
        later.close()


def test_configs_and_states_are_sent_again_when_home_assistant_restarts(broker, listener):
    with MqttPublisher(settings_for(broker)) as pub:
        pub.set_health(fps=14.93, camera="running")
        assert pub.wait_connected(10) and pub.wait_idle(10)
        before = len(listener.on("homeassistant/lock/edge-face-testdoor/lock/config"))
        listener.publish("homeassistant/status", b"online")                  # Home Assistant's birth message
        assert listener.wait_for(lambda m: len(listener.on("homeassistant/lock/edge-face-testdoor/lock/config"))
                                 > before)
        assert listener.wait_for(lambda m: len(listener.on("edge-face/testdoor/fps/state")) >= 2)
    assert listener.on("edge-face/testdoor/fps/state")[-1] == b"14.9"
    assert listener.on("edge-face/testdoor/camera/state")[-1] == b"running"


def test_the_camera_entity_exists_only_with_publish_faces(broker, listener):
    with MqttPublisher(settings_for(broker)) as pub:
        assert pub.wait_connected(10)
        assert pub.publish_face(b"\xff\xd8jpeg") is False
    with MqttPublisher(settings_for(broker, publish_faces=True)) as pub:
        assert pub.wait_connected(10)
        assert pub.publish_face(b"\xff\xd8jpeg") is True
        assert listener.wait_for(lambda m: [p for t, p, _ in m if t == "edge-face/testdoor/face"])
    camera = listener.on("homeassistant/camera/edge-face-testdoor/face/config")
    assert json.loads(camera[-1])["topic"] == "edge-face/testdoor/face"
    assert listener.on("edge-face/testdoor/face") == [b"\xff\xd8jpeg"]


def test_last_will_marks_the_door_offline_when_the_process_dies(broker, listener, tmp_path):
    """A real crash: a child process connects, then is killed with SIGKILL; the broker publishes the will."""
    script = tmp_path / "door.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from edge.mqtt.publisher import MqttPublisher
        from edge.mqtt.settings import from_dict
        pub = MqttPublisher(from_dict({{"enabled": True, "host": "127.0.0.1", "port": {broker.port},
                                        "client_id": "edge-face-testdoor", "base_topic": "edge-face/testdoor"}}))
        pub.start()
        assert pub.wait_connected(10)
        print("connected", flush=True)
        time.sleep(60)
    """))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "connected"
        assert listener.wait_for(lambda m: (("edge-face/testdoor/availability", b"online", False) in m
                                            or ("edge-face/testdoor/availability", b"online", True) in m))
        child.kill()
        child.wait(10)
        assert listener.wait_for(lambda m: [p for t, p, _ in m if t == "edge-face/testdoor/availability"][-1:]
                                 == [b"offline"], seconds=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


# ---------------------------------------------------------------------- events and the broker going away
def test_events_carry_user_similarity_and_time(broker, listener):
    with MqttPublisher(settings_for(broker)) as pub:
        assert pub.wait_connected(10)
        at = time.time() - 3.5
        assert pub.publish_event("grant", user="alice", similarity=0.91234, at=at)
        assert pub.publish_event("door_opened") is False          # not an event entity type
        assert pub.wait_idle(10)
    assert listener.wait_for(lambda m: events(listener))
    (event,) = events(listener)
    assert event["event_type"] == "grant" and event["user"] == "alice" and event["similarity"] == 0.9123
    assert dt.datetime.fromisoformat(event["time"]).timestamp() == pytest.approx(at, abs=0.001)
    assert listener.on("edge-face/testdoor/last_granted/state")[-1] == b"alice"
    assert listener.on("edge-face/testdoor/last_similarity/state")[-1] == b"0.912"


def test_no_event_is_lost_when_the_broker_dies_and_comes_back(persistent_broker):
    broker = persistent_broker
    listener = Listener(broker, session="home-assistant")      # like Home Assistant: a persistent session
    broker.wait_saved()                                         # its subscription is on the broker's disk
    pub = MqttPublisher(settings_for(broker)).start()
    try:
        assert pub.wait_connected(10)
        first = time.time()
        for i in range(5):
            pub.publish_event("unknown", similarity=0.3, at=first + i)
        assert pub.wait_idle(10)
        broker.stop()                                           # SIGKILL: a crash
        # While the broker is down: the door goes on; events are kept with the time they happened.
        times = [time.time() - 100 + i for i in range(30)]
        for i, at in enumerate(times):
            pub.publish_event("grant" if i % 2 else "deny", user=f"user{i}", similarity=0.8, at=at)
        assert pub.status()["queued"] == 30                     # none acknowledged: all kept
        broker.start()
        assert pub.wait_idle(20), pub.status()
        assert listener.wait_for(lambda m: len(events(listener)) >= 35)
        received = events(listener)[5:]
        assert [e["user"] for e in received] == [f"user{i}" for i in range(30)]        # none lost, in order
        assert [dt.datetime.fromisoformat(e["time"]).timestamp() for e in received] == \
            pytest.approx(times, abs=0.001)                                             # original times
        assert pub.status()["dropped"] == 0 and pub.status()["connections"] == 2
        # The door's state is published again after the reconnect (it is retained, latest only).
        assert listener.wait_for(lambda m: listener.on("edge-face/testdoor/availability")[-1:] == [b"online"])
    finally:
        pub.close()
        listener.close()


def test_a_full_queue_drops_the_oldest_and_counts_them(persistent_broker):
    broker = persistent_broker
    listener = Listener(broker, session="home-assistant")
    broker.wait_saved()
    pub = MqttPublisher(settings_for(broker, queue_size=10)).start()
    try:
        assert pub.wait_connected(10)
        broker.stop()
        deadline = time.monotonic() + 10
        while pub.status()["state"] == "connected":      # it noticed: nothing goes into a dead socket
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for i in range(25):
            pub.publish_event("deny", user=f"u{i}")
        assert pub.status()["queued"] == 10 and pub.status()["dropped"] == 15
        broker.start()
        assert pub.wait_idle(20)
        assert listener.wait_for(lambda m: len(events(listener)) >= 10)
        assert [e["user"] for e in events(listener)] == [f"u{i}" for i in range(15, 25)]
    finally:
        pub.close()
        listener.close()


def test_publishing_never_waits_for_an_unresponsive_broker():
    """A "broker" that accepts TCP connections and never answers: the publisher's thread is stuck waiting for
    the broker's reply for 10 s, and meanwhile every call the door makes returns."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)                                    # the kernel completes the handshake; nobody answers
        s = from_dict({"enabled": True, "host": "127.0.0.1", "port": silent.getsockname()[1]})
        pub = MqttPublisher(s).start()
        try:
            time.sleep(0.2)
            assert pub.status()["state"] == "connecting"
            for i in range(2000):
                pub.publish_event("unknown", similarity=0.1)
                pub.set_door(unlocked=bool(i % 2), door_open=False)
                pub.set_health(fps=15.0, camera="running")
            status = pub.status()
            assert status["state"] == "connecting"      # all of that happened during one connection attempt
            assert status["queued"] == 1000 and status["dropped"] == 1000
        finally:
            pub.close()
        assert pub.status()["state"] == "stopped"


def test_jammed_when_the_door_is_open_while_locked(broker, listener):
    with MqttPublisher(settings_for(broker)) as pub:
        assert pub.wait_connected(10)
        pub.set_door(unlocked=True, door_open=False)
        assert pub.wait_idle(10)
        pub.set_door(unlocked=True, door_open=True)
        assert pub.wait_idle(10)
        pub.set_door(unlocked=False, door_open=True, held_open=True)
        assert pub.wait_idle(10)
        pub.set_door(unlocked=False, door_open=False)
        assert pub.wait_idle(10)
    listener.wait_for(lambda m: len(listener.on("edge-face/testdoor/lock/state")) >= 3)
    assert listener.on("edge-face/testdoor/lock/state") == [b"UNLOCKED", b"JAMMED", b"LOCKED"]
    assert listener.on("edge-face/testdoor/door/state") == [b"OFF", b"ON", b"OFF"]
    assert listener.on("edge-face/testdoor/held_open/state") == [b"OFF", b"ON", b"OFF"]


# ---------------------------------------------------------------------- remote unlock
class Calls:
    def __init__(self):
        self.unlocks, self.refusals = [], []
        self.event = threading.Event()

    def unlock(self):
        self.unlocks.append(time.time())
        self.event.set()

    def refused(self, reason):
        self.refusals.append(reason)
        self.event.set()

    def wait(self):
        assert self.event.wait(10), "the door got no answer to the command"
        self.event.clear()


def command(code=CODE, action="UNLOCK"):
    return json.dumps({"action": action, "code": code})


def test_remote_unlock_disabled_never_calls_the_door(broker, listener):
    calls = Calls()
    with MqttPublisher(settings_for(broker, code=CODE), on_unlock=calls.unlock,
                       on_unlock_refused=calls.refused) as pub:
        assert pub.wait_connected(10)
        listener.publish("edge-face/testdoor/lock/set", command())
        calls.wait()
    assert calls.unlocks == [] and "disabled" in calls.refusals[0]


def test_remote_unlock_needs_the_code_and_is_rate_limited(broker, listener):
    calls = Calls()
    s = settings_for(broker, allow_remote_unlock=True, code=CODE, unlock_attempts_per_minute=3)
    with MqttPublisher(s, on_unlock=calls.unlock, on_unlock_refused=calls.refused) as pub:
        assert pub.wait_connected(10)
        listener.publish("edge-face/testdoor/lock/set", command("0000"))
        calls.wait()
        listener.publish("edge-face/testdoor/lock/set", b"UNLOCK")
        calls.wait()
        assert calls.unlocks == [] and calls.refusals == ["wrong code", "no code given"]
        listener.publish("edge-face/testdoor/lock/set", command())
        calls.wait()
        assert len(calls.unlocks) == 1
        listener.publish("edge-face/testdoor/lock/set", command())       # the fourth attempt in a minute
        calls.wait()
        assert len(calls.unlocks) == 1 and calls.refusals[-1].startswith("rate limited")


def test_a_retained_unlock_command_is_ignored(broker, listener):
    """A stale "UNLOCK" left on the broker must not open the door when the door (re)connects."""
    listener.publish("edge-face/testdoor/lock/set", command(), retain=True)
    calls = Calls()
    s = settings_for(broker, allow_remote_unlock=True, code=CODE)
    with MqttPublisher(s, on_unlock=calls.unlock, on_unlock_refused=calls.refused) as pub:
        assert pub.wait_connected(10)
        listener.publish("edge-face/testdoor/lock/set", command("9999"))   # a live command, after the stale one
        calls.wait()
    assert calls.unlocks == [] and calls.refusals == ["wrong code"]
    listener.publish("edge-face/testdoor/lock/set", b"", retain=True)


# ---------------------------------------------------------------------- password, TLS, bad settings
def write_password(tmp_path, text=PASSWORD):
    path = tmp_path / "broker-password"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_password_file_authentication(password_broker, tmp_path):
    good = settings_for(password_broker, username=USER, password_file=write_password(tmp_path))
    assert "connected to" in probe.check(good)
    listener = Listener(password_broker)
    try:
        with MqttPublisher(good) as pub:
            assert pub.wait_connected(10)
            pub.publish_event("grant", user="bob", similarity=0.9)
            assert pub.wait_idle(10)
        assert listener.wait_for(lambda m: events(listener))
    finally:
        listener.close()
    wrong = settings_for(password_broker, username=USER, password_file=write_password(tmp_path / "..", "nope"))
    with pytest.raises(BrokerError, match="refused the user name or password"):
        probe.check(wrong)
    with pytest.raises(BrokerError, match="refused the user name or password"):
        probe.check(settings_for(password_broker))                       # no credentials at all
    pub = MqttPublisher(wrong).start()
    try:
        deadline = time.monotonic() + 10
        while "password" not in pub.status()["last_error"]:
            assert time.monotonic() < deadline, pub.status()
            time.sleep(0.05)
        assert pub.status()["connected"] is False and "nope" not in pub.status()["last_error"]
    finally:
        pub.close()


def test_tls_with_a_throwaway_ca(tls_broker, tmp_path):
    base = dict(username=USER, password_file=write_password(tmp_path), tls=True)
    good = settings_for(tls_broker, ca_file=str(tls_broker.certs["ca"]), **base)
    assert "mqtts://127.0.0.1" in probe.check(good)
    assert "published a test event" in probe.send_test_event(good)
    listener = Listener(tls_broker)
    try:
        with MqttPublisher(good) as pub:
            assert pub.wait_connected(10)
            pub.publish_event("lockout", similarity=0.2)
            assert pub.wait_idle(10)
        assert listener.wait_for(lambda m: events(listener))
        assert events(listener)[0]["event_type"] == "lockout"
    finally:
        listener.close()
    # The system's authorities do not know the throw-away CA: a clear refusal, not a crash.
    with pytest.raises(BrokerError, match="cannot verify the TLS certificate.*mqtt.ca_file"):
        probe.check(settings_for(tls_broker, **base))
    # Plain MQTT against the TLS port.
    with pytest.raises(BrokerError, match="mqtt.tls"):
        probe.check(settings_for(tls_broker, username=USER, password_file=base["password_file"]))


def test_tls_client_certificate(tmp_path):
    b = Broker(tmp_path / "mtls", tls=True, client_certs=True).start()
    try:
        certs = b.certs
        good = settings_for(b, tls=True, ca_file=str(certs["ca"]), cert_file=str(certs["client"]),
                            key_file=str(certs["client-key"]))
        assert "connected to" in probe.check(good)
        with pytest.raises(BrokerError):
            probe.check(settings_for(b, tls=True, ca_file=str(certs["ca"])))          # no client certificate
    finally:
        b.stop()


def test_bad_broker_settings_give_a_clear_error(tmp_path):
    from mqtt_broker import free_port

    with pytest.raises(BrokerError, match="nothing accepts connections.*mqtt.port"):
        probe.check(from_dict({"enabled": True, "host": "127.0.0.1", "port": free_port()}))
    with pytest.raises(BrokerError, match="cannot find the host.*mqtt.host"):
        probe.check(from_dict({"enabled": True, "host": "no-such-broker.invalid"}))
    with pytest.raises(ConfigError, match="mqtt.password_file"):
        probe.check(from_dict({"enabled": True, "username": "u", "password_file": str(tmp_path / "none")}))
    # The publisher keeps trying, reports the problem and stays usable.
    pub = MqttPublisher(from_dict({"enabled": True, "host": "127.0.0.1", "port": free_port(),
                                   "reconnect_min_seconds": 0.1, "reconnect_max_seconds": 0.2})).start()
    try:
        deadline = time.monotonic() + 10
        while "nothing accepts" not in pub.status()["last_error"]:
            assert time.monotonic() < deadline, pub.status()
            time.sleep(0.05)
        assert pub.publish_event("deny", user="x") and pub.status()["queued"] == 1
    finally:
        pub.close()


# ---------------------------------------------------------------------- the door's events through the bridge
def test_the_bridge_turns_door_events_into_states_and_events(broker, listener):
    from types import SimpleNamespace

    from edge.mqtt.bridge import DoorBridge

    def event(kind, user=None, similarity=None, **details):
        return SimpleNamespace(kind=kind, time=time.time() - 1, user=user, similarity=similarity, details=details)

    with MqttPublisher(settings_for(broker)) as pub:
        bridge = DoorBridge(pub, door_open=False)
        assert pub.wait_connected(10) and pub.wait_idle(10)
        for e in (event("grant", "alice", 0.88, votes=3, frames=5), event("relay", active=True, reason="grant"),
                  event("door_opened"), event("relay", active=False, reason="expired"), event("door_closed"),
                  event("unknown", None, 0.41, reason="no match"), event("camera_failure", error="x"),
                  event("door_opened"), event("door_held_open"), event("door_closed")):     # forced open
            bridge(e)
            assert pub.wait_idle(10)
    # An entry (opened while unlocked, relay dropped while still open) stays LOCKED; forced open is JAMMED.
    assert listener.on("edge-face/testdoor/lock/state") == [b"LOCKED", b"UNLOCKED", b"LOCKED", b"JAMMED",
                                                            b"LOCKED"]
    assert listener.on("edge-face/testdoor/held_open/state") == [b"OFF", b"ON", b"OFF"]
    assert [(e["event_type"], e["user"]) for e in events(listener)] == [("grant", "alice"), ("unknown", None)]
    assert events(listener)[0]["votes"] == 3 and events(listener)[1]["reason"] == "no match"
