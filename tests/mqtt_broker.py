"""A real MQTT broker for the tests: Debian's ``mosquitto`` on a free loopback port, started and stopped here.

``Broker`` writes its own configuration in a temporary folder (no persistence unless asked: then the broker saves
its database every second, so a subscriber's persistent session survives a crash and the broker queues for it
what arrives after the restart, before the subscriber is back), optionally with a password file made by
``mosquitto_passwd`` and a TLS listener whose certificates come from a throw-away certificate authority made with
``cryptography``. ``Listener`` is a plain paho client that records what arrives. Nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import missing

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
USER, PASSWORD = "door", "broker pass 1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, *, up: bool, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto port {port} did not come {'up' if up else 'down'}")


# ---------------------------------------------------------------------- a throw-away certificate authority
def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_ca(folder: Path) -> dict:
    """CA, broker certificate (localhost, 127.0.0.1) and a client certificate, all signed by the CA; paths."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("edge-face test CA")).issuer_name(_name("edge-face test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(common: str, sans: list | None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    paths = {name: folder / f"{name}.pem" for name in ("ca", "server", "server-key", "client", "client-key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key, cert = leaf("localhost", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    paths["server"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths["server-key"])
    key, cert = leaf("door", None)
    paths["client"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths["client-key"])
    return paths


# ---------------------------------------------------------------------- the broker
class Broker:
    def __init__(self, folder: Path, *, password: bool = False, tls: bool = False, client_certs: bool = False,
                 persistent: bool = False):
        if not Path(MOSQUITTO).exists():
            missing("mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.certs = make_ca(folder / "ca") if tls else None
        lines = [f"user {getpass.getuser()}", f"listener {self.port} 127.0.0.1", "log_dest stderr",
                 "log_type error", "log_type warning"]
        self.database = folder / "mosquitto.db"
        if persistent:
            lines += ["persistence true", f"persistence_location {folder}/", "autosave_interval 1"]
        else:
            lines += ["persistence false"]
        if password:
            pw = folder / "passwords"
            subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(pw), USER, PASSWORD], check=True,
                           capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            lines += [f"cafile {self.certs['ca']}", f"certfile {self.certs['server']}",
                      f"keyfile {self.certs['server-key']}", "tls_version tlsv1.2"]
            if client_certs:
                lines += ["require_certificate true"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None
        self.log = folder / "mosquitto.log"

    def start(self) -> "Broker":
        assert self.process is None
        with self.log.open("ab") as fh:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=fh, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, up=True)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None
        return self

    def stop(self) -> None:
        """SIGKILL: the broker vanishes the way a crashed one does (no goodbye to its clients)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None
        wait_port(self.port, up=False)

    def wait_saved(self, seconds: float = 10.0) -> None:
        """A persistent broker has written its database since now (sessions and subscriptions are on disk)."""
        since = time.time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.database.exists() and self.database.stat().st_mtime > since:
                return
            time.sleep(0.1)
        raise RuntimeError("mosquitto did not save its database")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def persistent_broker(tmp_path):
    b = Broker(tmp_path / "broker-db", persistent=True).start()
    yield b
    b.stop()


@pytest.fixture
def password_broker(tmp_path):
    b = Broker(tmp_path / "broker-pw", password=True).start()
    yield b
    b.stop()


@pytest.fixture
def tls_broker(tmp_path):
    b = Broker(tmp_path / "broker-tls", password=True, tls=True).start()
    yield b
    b.stop()


# ---------------------------------------------------------------------- a subscriber that records
class Listener:
    """Subscribes to ``topics`` and keeps every message (topic, payload, retain) in arrival order."""

    def __init__(self, broker: Broker, topics=("#",), *, session: str | None = None):
        """``session``: a persistent session with this client id (the broker keeps the subscription and queues
        QoS 1 messages while we are away, also across a crash of a persistent broker)."""
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=session or f"listener-{time.monotonic_ns()}",
                                  clean_session=session is None)
        if broker.password:
            self.client.username_pw_set(USER, PASSWORD)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.certs["ca"]))
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.05, 0.5)
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "listener could not subscribe"

    def _on_message(self, _c, _u, msg):
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate, seconds: float = 10.0):
        """Wait until ``predicate(messages)`` is truthy; returns its value (or the last falsy one)."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                value = predicate(list(self.messages))
                if value or time.monotonic() >= deadline:
                    return value
                self._cond.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))

    def on(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _r in self.messages if t == topic]

    def publish(self, topic: str, payload, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
