"""Home Assistant and MQTT: the door as a device on the home's broker, never depending on it.

* :mod:`.settings`: the validated ``[mqtt]`` table (``MqttSettings``, ``from_dict``, ``check_files``); imports
  nothing heavy, so the configuration can use it without loading paho;
* :mod:`.discovery`: topics and Home Assistant discovery configs (pure);
* :mod:`.remote`: whether an unlock command may open the door (pure);
* :mod:`.client`: one paho-mqtt connection, errors as sentences;
* :mod:`.publisher`: ``MqttPublisher``, the thread that publishes and reconnects;
* :mod:`.bridge`: ``DoorBridge``, the event listener that feeds the publisher;
* :mod:`.probe`: one-shot checks for ``doctor`` and ``mqtt test``.
"""
