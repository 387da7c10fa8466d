"""The systemd notify protocol against a real AF_UNIX datagram socket, as systemd would hold it."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from edge.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def receive(sock) -> dict:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_status_watchdog_stopping_reach_the_socket(listener):
    path, sock = listener
    n = Notifier(environ={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("camera ok\nmodel loaded")
    assert receive(sock) == {"READY": "1", "STATUS": "camera ok model loaded"}  # one line per field
    n.watchdog()
    assert receive(sock) == {"WATCHDOG": "1"}
    n.status("3 users")
    assert receive(sock) == {"STATUS": "3 users"}
    n.stopping()
    assert receive(sock) == {"STOPPING": "1"}
    n.close()


def test_abstract_socket_names_start_with_at():
    name = f"edge-face-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        n = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert receive(sock) == {"READY": "1"}
    finally:
        sock.close()


def test_without_systemd_everything_is_a_quiet_no_op():
    n = Notifier(environ={})
    assert not n.enabled and n.watchdog_seconds is None
    assert n.ready() is False and n.watchdog() is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path, caplog):
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level("WARNING"):
        assert n.watchdog() is False
        assert n.watchdog() is False
    assert caplog.text.count("notify socket unusable") == 1


def test_watchdog_period_comes_from_watchdog_usec_for_this_process_only():
    assert Notifier(environ={"WATCHDOG_USEC": "20000000"}).watchdog_seconds == 20.0
    mine = {"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(environ=mine).watchdog_seconds == 5.0
    other = {"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(environ=other).watchdog_seconds is None
    assert Notifier(environ={"WATCHDOG_USEC": "soon"}).watchdog_seconds is None
