"""The MQTT connection as the admin page words it (the whole-service test checks it with a real broker)."""

from __future__ import annotations

from edge.status import MqttStatus
from edge.web.display import mqtt_text


def test_the_connection_in_words():
    assert mqtt_text(None) == "off (mqtt.enabled = false)"
    up = MqttStatus(state="connected", broker="mqtts://hub:8883", sent=12)
    assert mqtt_text(up) == "connected to mqtts://hub:8883; 12 events sent"
    down = MqttStatus(state="disconnected", broker="mqtt://hub:1883", retry_in=4.0, queued=3, dropped=1,
                      last_error="nothing accepts connections at the MQTT broker at mqtt://hub:1883")
    text = mqtt_text(down)
    assert text.startswith("disconnected from mqtt://hub:1883, retrying in 4 s: nothing accepts connections")
    assert "3 events waiting" in text and "1 events dropped" in text
