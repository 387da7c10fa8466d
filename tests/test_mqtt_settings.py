"""``[mqtt]`` settings: defaults, clear errors for bad values, files checked before the service starts."""

from __future__ import annotations

import pytest

from edge.errors import ConfigError
from edge.mqtt import discovery
from edge import config as edge_config
from edge.mqtt.settings import MqttSettings, check_files, from_dict


def test_defaults_are_off_and_safe():
    s = from_dict({})
    assert s.enabled is False and s.allow_remote_unlock is False and s.publish_faces is False
    assert s.broker_port == 1883 and from_dict({"tls": True}).broker_port == 8883
    assert s.topic.startswith("edge-face/") and s.discovery_prefix == "homeassistant"
    assert s.node_id.startswith("edge-face-")


@pytest.mark.parametrize("raw, key, words", [
    ({"port": "1883"}, "mqtt.port", "whole number"),
    ({"port": 70000}, "mqtt.port", "between"),
    ({"password": "hunter2"}, "mqtt.password", "password_file"),
    ({"hots": "x"}, "mqtt.hots", "unknown key"),
    ({"allow_remote_unlock": True}, "mqtt.code", "at least 4"),
    ({"tls": True, "cert_file": "c.pem"}, "mqtt.key_file", "both"),
    ({"ca_file": "ca.pem"}, "mqtt.ca_file", "tls = true"),
    ({"password_file": "pw"}, "mqtt.username", "required"),
    ({"base_topic": "home/#"}, "mqtt.base_topic", "not a usable topic"),
    ({"base_topic": "/door"}, "mqtt.base_topic", "not a usable topic"),
    ({"enabled": True, "host": ""}, "mqtt.host", "required"),
    ({"queue_size": 1}, "mqtt.queue_size", "between"),
    ({"enabled": "yes"}, "mqtt.enabled", "true or false"),
])
def test_bad_values_name_the_key(raw, key, words):
    with pytest.raises(ConfigError) as err:
        from_dict(raw)
    assert str(err.value).startswith(key + ":") and words in str(err.value)


def test_the_password_never_appears_in_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        from_dict({"password": "hunter2"})
    assert "hunter2" not in str(err.value)


def test_files_are_checked_with_their_key(tmp_path):
    s = from_dict({"username": "door", "password_file": str(tmp_path / "absent")})
    with pytest.raises(ConfigError, match=r"^mqtt.password_file: .*does not exist"):
        check_files(s)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        check_files(from_dict({"username": "door", "password_file": str(empty)}))
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o644)
    s = from_dict({"username": "door", "password_file": str(pw)})
    assert s.read_password() == "s3cret"
    warnings = check_files(s)
    assert any("chmod 600" in w for w in warnings)
    pw.chmod(0o600)
    assert check_files(s) == []
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"^mqtt.ca_file: .*not a PEM certificate"):
        check_files(from_dict({"tls": True, "ca_file": str(bad_ca)}))


def test_relative_file_names_resolve_next_to_the_configuration(tmp_path):
    path = tmp_path / "edge-face.toml"
    path.write_text('[mqtt]\nusername = "u"\npassword_file = "secrets/pw"\n')
    assert edge_config.load(path).mqtt.password_file == str(tmp_path / "secrets" / "pw")


def test_a_bad_mqtt_setting_in_a_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "edge-face.toml"
    path.write_text('[mqtt]\nenabled = true\nport = "eighteen"\n')
    with pytest.raises(ConfigError, match=r"edge-face.toml: mqtt.port: must be a whole number"):
        edge_config.load(path)


def test_unique_ids_are_stable_and_topic_safe():
    a = MqttSettings(client_id="edge-face-front door.local")
    b = MqttSettings(client_id="edge-face-front door.local")
    ids_a = [c["unique_id"] for _comp, _obj, c in discovery.entities(a) if c]
    assert ids_a == [c["unique_id"] for _comp, _obj, c in discovery.entities(b) if c]
    assert len(set(ids_a)) == len(ids_a)
    for topic, _payload in discovery.messages(a):
        prefix, component, node, obj, last = topic.split("/")
        assert (prefix, last) == ("homeassistant", "config")
        assert all(ch.isalnum() or ch in "_-" for ch in node + obj)


def test_entity_ids_are_sent_as_default_entity_id_not_the_deprecated_object_id():
    """Home Assistant 2025.10 deprecated the payload's object_id for default_entity_id (<component>.<id>) and
    stopped reading it in 2026.4; the ids stay what object_id gave, so automations keep working."""
    settings = MqttSettings(client_id="edge-face-Front Door.local")
    configs = {(comp, obj): c for comp, obj, c in discovery.entities(settings) if c}
    assert configs[("lock", "lock")]["default_entity_id"] == "lock.edge_face_front_door_local_lock"
    assert configs[("event", "access")]["default_entity_id"] == "event.edge_face_front_door_local_access"
    for (component, _obj), config in configs.items():
        assert "object_id" not in config
        domain, entity = config["default_entity_id"].split(".")
        assert domain == component and entity and all(ch.islower() or ch.isdigit() or ch == "_" for ch in entity)


def test_lock_commands_are_parsed_strictly():
    assert discovery.parse_lock_command(b'{"action": "UNLOCK", "code": "12 34"}') == \
        discovery.LockCommand("UNLOCK", "12 34")
    assert discovery.parse_lock_command(b"UNLOCK") == discovery.LockCommand("UNLOCK", None)
    assert discovery.parse_lock_command(b'{"action": "unlock", "code": "1"}').action == ""
    assert discovery.parse_lock_command(b"\xff\xfe").action == ""
    assert discovery.parse_lock_command(b"[1, 2]").action == ""
