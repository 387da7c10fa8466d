"""Slow clients against a running :class:`edge.web.WebServer` (issue 11, item 7): connections that complete TLS
and then dribble their request headers, and a visitor from another address. Used by
``tests/test_web_slow_clients.py`` and ``scripts/bench_slow_clients.py``.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from edge.web.tls import CERT_NAME


def tls_context(cfg) -> ssl.SSLContext:
    """Trusts the page's self-signed certificate (in the state folder)."""
    ctx = ssl.create_default_context(cafile=str(cfg.state_dir / CERT_NAME))
    ctx.check_hostname = False
    return ctx


def open_slow(cfg, port: int, count: int, *, source: str) -> tuple[list[ssl.SSLSocket], int]:
    """``count`` connections from ``source`` that complete TLS and send the start of a request; the ones the
    server refuses (closed at once) are counted, not kept. Returns (held, refused)."""
    ctx, held, refused = tls_context(cfg), [], 0
    for _ in range(count):
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
            tls = ctx.wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n")
            held.append(tls)
        except OSError:
            refused += 1
    return held, refused


def dribble(held: list, stop: threading.Event, every: float, closed_by_server: list | None = None) -> None:
    """One header byte per connection every ``every`` seconds until ``stop``; a connection the server ended
    leaves ``held`` (and its time goes to ``closed_by_server``)."""
    while not stop.is_set():
        for tls in list(held):
            try:
                tls.sendall(b"X")
            except OSError:
                held.remove(tls)
                if closed_by_server is not None:
                    closed_by_server.append(time.monotonic())
        stop.wait(every)


def visit(cfg, port: int, *, source: str, timeout: float) -> bytes:
    """A visitor asks for the login page; the first bytes of the answer."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    with tls_context(cfg).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return tls.recv(64)
