"""``config check``, ``doctor`` and ``mqtt test`` with MQTT: real processes, a real mosquitto, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from mqtt_broker import PASSWORD, USER, Listener, broker, free_port, password_broker  # noqa: F401


def write_config(tmp_path, mqtt: dict) -> str:
    lines = ["[paths]", f'state_dir = "{tmp_path / "state"}"', "[web]", "enabled = false", "[mqtt]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in mqtt.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def edge_face(*args):
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120)


def test_config_check_reports_bad_broker_settings_clearly(tmp_path):
    done = edge_face("config", "check", write_config(tmp_path, {"enabled": True, "port": 99999}))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "mqtt.port: must be between 0 and 65535" in done.stderr
    done = edge_face("config", "check", write_config(tmp_path, {"enabled": True, "password": "hunter2"}))
    assert done.returncode == 2 and "mqtt.password_file" in done.stderr and "hunter2" not in done.stderr
    done = edge_face("config", "check", write_config(tmp_path, {"enabled": True, "username": "door",
                                                                "password_file": "missing-pw"}))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"mqtt.password_file: {tmp_path / 'missing-pw'} does not exist" in done.stderr
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    done = edge_face("config", "check", write_config(tmp_path, {"enabled": True, "username": "door",
                                                                "password_file": "pw", "host": "broker.lan"}))
    assert done.returncode == 0, done.stderr
    assert "mqtt://broker.lan:1883 as door, topics edge-face/" in done.stdout and "secret" not in done.stdout


def test_doctor_checks_the_broker(tmp_path, password_broker):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    good = write_config(tmp_path, {"enabled": True, "host": "127.0.0.1", "port": password_broker.port,
                                   "username": USER, "password_file": str(pw)})
    done = edge_face("--config", good, "doctor", "--json", "--check", "mqtt")
    [check] = json.loads(done.stdout)["checks"]
    assert check["status"] == "ok" and "connected to mqtt://127.0.0.1" in check["reason"], check
    pw.write_text("wrong password\n")
    done = edge_face("--config", good, "doctor", "--json", "--check", "mqtt")
    [check] = json.loads(done.stdout)["checks"]
    assert check["status"] == "failed" and "refused the user name or password" in check["reason"]
    assert done.returncode == 1 and "Traceback" not in done.stderr
    dead = write_config(tmp_path, {"enabled": True, "host": "127.0.0.1", "port": free_port()})
    [check] = json.loads(edge_face("--config", dead, "doctor", "--json", "--check", "mqtt").stdout)["checks"]
    assert check["status"] == "failed" and "nothing accepts connections" in check["reason"]


def test_mqtt_test_publishes_a_test_event(tmp_path, broker):
    listener = Listener(broker)
    try:
        path = write_config(tmp_path, {"enabled": True, "host": "127.0.0.1", "port": broker.port,
                                       "base_topic": "edge-face/cli"})
        done = edge_face("--config", path, "mqtt", "test")
        assert done.returncode == 0, done.stderr
        assert "published a test event on edge-face/cli/event" in done.stdout
        assert listener.wait_for(lambda m: listener.on("edge-face/cli/event"))
        assert json.loads(listener.on("edge-face/cli/event")[0])["event_type"] == "test"
    finally:
        listener.close()
    done = edge_face("--config", write_config(tmp_path, {"enabled": False}), "mqtt", "test")
    assert done.returncode == 2 and "mqtt.enabled" in done.stderr and "Traceback" not in done.stderr
    done = edge_face("--config", write_config(tmp_path, {"enabled": True, "host": "127.0.0.1",
                                                         "port": free_port()}), "mqtt", "test")
    assert done.returncode == 2 and "nothing accepts connections" in done.stderr and "Traceback" not in done.stderr
