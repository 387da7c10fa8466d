"""Home Assistant and MQTT: the door as a device on the home's broker, never depending on it.

* :mod:`.settings`: the validated ``[mqtt]`` table (:class:`MqttSettings`, :func:`from_dict`, :func:`check_files`);
* :mod:`.discovery`: topics and Home Assistant discovery configs (pure);
* :mod:`.remote`: whether an unlock command may open the door (pure);
* :mod:`.client`: one paho-mqtt connection, errors as sentences;
* :mod:`.publisher`: :class:`MqttPublisher`, the thread that publishes and reconnects;
* :mod:`.probe`: one-shot checks for ``doctor`` and ``mqtt test``.
"""

from .publisher import MqttPublisher, lock_state
from .settings import MqttSettings, check_files, from_dict

__all__ = ["MqttPublisher", "MqttSettings", "check_files", "from_dict", "lock_state"]
