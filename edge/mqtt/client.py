"""One connection to the broker with paho-mqtt 2.x: TLS, password file, last will, and errors a person can read.

:func:`connect` blocks until the broker accepted (CONNACK) or refused; it is used by the publisher's own thread
and by one-shot checks (``doctor``, ``mqtt test``). Every failure becomes a :class:`~edge.errors.BrokerError`
(unreachable, TLS, refused credentials) or a :class:`~edge.errors.ConfigError` (unreadable files), never a
paho or socket exception.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import BrokerError, ConfigError
from .settings import MqttSettings

CONNECT_TIMEOUT = 5.0


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        if settings.cert_file:
            context.load_cert_chain(settings.cert_file, settings.key_file)
    except FileNotFoundError as exc:
        raise ConfigError(f"mqtt: TLS file not found: {exc.filename}") from None
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise ConfigError(f"mqtt: cannot use the TLS files (ca_file, cert_file, key_file): {exc}") from None
    return context


def make_client(settings: MqttSettings, *, client_id: str | None = None, will: tuple[str, str] | None = None,
                ) -> paho.Client:
    """A configured, unconnected client. ``will``: (topic, payload) the broker publishes (retained) if the
    connection dies without a goodbye."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or settings.effective_client_id,
                         clean_session=True, reconnect_on_failure=False)
    client.connect_timeout = CONNECT_TIMEOUT
    if settings.username:
        client.username_pw_set(settings.username, settings.read_password())
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def _refusal(reason_code) -> str:
    text = str(reason_code)
    if "authori" in text.lower() or "password" in text.lower():
        return f"the broker refused the user name or password ({text}): check mqtt.username and mqtt.password_file"
    if "identifier" in text.lower():
        return f"the broker refused the client id ({text}): check mqtt.client_id"
    return f"the broker refused the connection: {text}"


def explain(exc: BaseException, settings: MqttSettings) -> str:
    """A sentence for a failed connect: what went wrong and which setting to look at."""
    where = f"the MQTT broker at {settings.broker}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"cannot verify the TLS certificate of {where}: {exc.verify_message}; check mqtt.ca_file "
                f"and that mqtt.host matches the name in the broker's certificate")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed ({exc.reason or exc}); check mqtt.tls and mqtt.port"
    if isinstance(exc, socket.gaierror):
        return f"cannot find the host of {where}: {exc.strerror}; check mqtt.host"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing accepts connections at {where}; is the broker running, and is mqtt.port right?"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{where} did not answer within {CONNECT_TIMEOUT:g} s; check mqtt.host, mqtt.port and the network"
    if isinstance(exc, ConnectionResetError):
        return f"{where} closed the connection at once; with a TLS broker set mqtt.tls = true"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {exc}"


def connect(client: paho.Client, settings: MqttSettings, *, timeout: float = 10.0,
            cancel: threading.Event | None = None) -> None:
    """Connect and wait for the broker's answer; BrokerError when it does not accept us.

    Runs ``client.loop`` itself until CONNACK, so call it from the thread that will own the client.
    """
    answer: list = []

    def on_connect(_client, _userdata, _flags, reason_code, _properties):
        answer.append(reason_code)

    previous = client.on_connect
    client.on_connect = on_connect
    try:
        try:
            client.connect(settings.host, settings.broker_port, keepalive=settings.keepalive_seconds)
        except Exception as exc:  # socket, DNS and TLS errors arrive from here
            raise BrokerError(explain(exc, settings)) from None
        deadline = time.monotonic() + timeout
        while not answer and time.monotonic() < deadline and not (cancel is not None and cancel.is_set()):
            rc = client.loop(timeout=0.1)
            if rc not in (paho.MQTT_ERR_SUCCESS,) and not answer:
                _close_quietly(client)
                raise BrokerError(f"{settings.broker} closed the connection before answering as an MQTT broker "
                                  f"({paho.error_string(rc)}); check mqtt.port, and mqtt.tls for a TLS broker")
        if not answer and cancel is not None and cancel.is_set():
            _close_quietly(client)
            raise BrokerError("stopped while connecting")
        if not answer:
            _close_quietly(client)
            raise BrokerError(f"the MQTT broker at {settings.broker} did not answer the connection request "
                              f"within {timeout:g} s")
        if answer[0].is_failure:
            _close_quietly(client)
            raise BrokerError(_refusal(answer[0]))
    finally:
        client.on_connect = previous


def _close_quietly(client: paho.Client) -> None:
    """Drop a half-open connection (refused, timed out); errors here change nothing for the caller."""
    try:
        client.disconnect()
        client.loop(timeout=0)
    except Exception:
        pass
