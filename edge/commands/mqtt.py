"""``edge-face mqtt test``: publish a test event to the configured broker, to check it from Home Assistant."""

from __future__ import annotations

from ..errors import ConfigError
from . import load_config


def register(sub) -> None:
    parser = sub.add_parser("mqtt", help="the MQTT broker and Home Assistant")
    actions = parser.add_subparsers(dest="mqtt_command", metavar="ACTION", required=True)
    test = actions.add_parser("test", help='publish a "test" event on the door\'s event topic and wait for the '
                                           "broker's acknowledgement")
    test.set_defaults(func=mqtt_test)


def mqtt_test(args) -> int:
    cfg = load_config(args)
    if not cfg.mqtt.enabled:
        raise ConfigError("mqtt.enabled: MQTT is off in this configuration; set mqtt.enabled = true and the broker "
                          "settings first")
    from ..mqtt import probe   # here: commands that do not talk to a broker never load paho

    print(probe.send_test_event(cfg.mqtt))
    return 0
