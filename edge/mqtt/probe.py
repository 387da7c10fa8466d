"""One-shot broker checks for ``edge-face doctor`` and ``edge-face mqtt test``.

They connect with their own client id (``<client_id>-check``) and no last will, so they neither push the running
service off the broker (a broker drops the older of two clients with one id) nor mark the door offline.
"""

from __future__ import annotations

import json
import time

from ..errors import BrokerError
from . import client as _client
from . import discovery
from .publisher import iso_time
from .settings import MqttSettings, check_files


def check(settings: MqttSettings, *, timeout: float = 10.0) -> str:
    """Connect, then disconnect; returns a one-line description or raises BrokerError/ConfigError."""
    check_files(settings)
    client = _client.make_client(settings, client_id=f"{settings.effective_client_id}-check")
    started = time.monotonic()
    _client.connect(client, settings, timeout=timeout)
    took = time.monotonic() - started
    client.disconnect()
    client.loop(timeout=0.1)
    auth = f" as {settings.username}" if settings.username else ""
    return f"connected to {settings.broker}{auth} in {took * 1000:.0f} ms"


def send_test_event(settings: MqttSettings, *, timeout: float = 10.0) -> str:
    """Publish a ``test`` event on the door's event topic and wait for the broker's acknowledgement."""
    check_files(settings)
    client = _client.make_client(settings, client_id=f"{settings.effective_client_id}-check")
    _client.connect(client, settings, timeout=timeout)
    topic = discovery.topics(settings).event
    now = time.time()
    body = {"event_type": "test", "user": None, "similarity": None, "time": iso_time(now),
            "timestamp": round(now, 3), "event_id": f"test-{int(now)}"}
    info = client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1, retain=False)
    deadline = time.monotonic() + timeout
    while not info.is_published() and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    client.loop(timeout=0.1)
    if not info.is_published():
        raise BrokerError(f"the MQTT broker at {settings.broker} did not acknowledge the test event within "
                          f"{timeout:g} s")
    return f"published a test event on {topic} ({settings.broker})"
