"""Slow clients against the REAL cheroot server on loopback (issue 11, item 7).

Forty connections from one address that dribble their request headers used to hold every worker thread, so the
page did not answer anyone for as long as the attack went on. Each case here is bounded: the attackers stop
after at most 25 s whatever happens.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from edge.web import WebServer, create_app
from edge.web.server import PER_ADDRESS
from slow_clients import dribble, open_slow, visit
from web_fixtures import make_backend

ATTACKER, VISITOR = "127.0.0.20", "127.0.0.21"


@pytest.fixture()
def site(tmp_path):
    cfg, store, log = make_backend(tmp_path, host="127.0.0.1", port=0)
    app = create_app(cfg, store=store, log=log, engine=None)
    server = WebServer(cfg, app, threads=8, header_seconds=3).start()
    yield cfg, server
    server.stop()


def test_forty_slow_connections_from_one_address_leave_the_page_answering_others(site):
    cfg, server = site
    stop, closed = threading.Event(), []
    held, refused = open_slow(cfg, server.port, 40, source=ATTACKER)
    dribbler = threading.Thread(target=dribble, args=(held, stop, 1.0, closed), daemon=True)
    dribbler.start()
    try:
        answer = visit(cfg, server.port, source=VISITOR, timeout=15)
        assert answer.startswith(b"HTTP/1.1 200")
        assert len(held) + len(closed) <= PER_ADDRESS or refused >= 40 - PER_ADDRESS   # the per-address cap
        deadline = time.monotonic() + 20
        while held and time.monotonic() < deadline:                # the header deadline ends the rest
            time.sleep(0.2)
        assert not held, f"{len(held)} slow connections still open after 20 s"
    finally:
        stop.set()
        dribbler.join(timeout=5)
        for tls in held:
            tls.close()


def test_a_connection_that_never_sends_anything_takes_no_worker(site):
    cfg, server = site
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(f"127.0.1.{i}", 0))
            for i in range(1, 13)]                                # more than the 8 worker threads
    try:
        assert visit(cfg, server.port, source=VISITOR, timeout=5).startswith(b"HTTP/1.1 200")
    finally:
        for s in idle:
            s.close()


def test_plain_http_to_the_https_port_gets_a_plain_answer(site):
    cfg, server = site
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = s.recv(400)
    assert reply.startswith(b"HTTP/1.1 400") and b"https://" in reply


def test_the_page_works_at_a_lower_cpu_priority_than_the_door(tmp_path):
    """Decoding uploads in a web worker must not take CPU time from the door's recognition thread."""
    import os

    from web_fixtures import make_backend as backend

    def app(environ, start_response):
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        body = str(nice).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    cfg, _store, _log = backend(tmp_path, host="127.0.0.1", port=0, https=False)
    server = WebServer(cfg, app).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        worker_nice = int(reply.split(b"\r\n\r\n", 1)[1])
        assert worker_nice >= os.getpriority(os.PRIO_PROCESS, 0) + 10
    finally:
        server.stop()
