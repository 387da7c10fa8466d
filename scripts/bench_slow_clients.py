#!/usr/bin/env python3
"""Slow-client benchmark (issue 11, item 7): how long a visitor waits for the login page while one address holds
40 connections that send one header byte every 4 s, and how many of those connections the server accepted.

Runs the real WebServer (HTTPS, default limits) on loopback with a throwaway state folder.

    .venv/bin/python scripts/bench_slow_clients.py [--connections 40] [--seconds 60]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the attack lasts at most")
    args = ap.parse_args()

    from edge.web import WebServer, create_app
    from edge.web.tls import CERT_NAME
    from web_fixtures import make_backend

    with tempfile.TemporaryDirectory() as tmp:
        cfg, store, log = make_backend(Path(tmp), host="127.0.0.1", port=0)
        server = WebServer(cfg, create_app(cfg, store=store, log=log, engine=None)).start()
        ctx = ssl.create_default_context(cafile=str(cfg.state_dir / CERT_NAME))
        ctx.check_hostname = False
        held, refused = [], 0
        for _ in range(args.connections):
            try:
                raw = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                               source_address=("127.0.0.20", 0))
                tls = ctx.wrap_socket(raw, server_hostname="localhost")
                tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n")
                held.append(tls)
            except OSError:
                refused += 1
        accepted = len(held)
        stop = threading.Event()

        def dribble():
            while not stop.is_set():
                for tls in list(held):
                    try:
                        tls.sendall(b"X")
                    except OSError:
                        held.remove(tls)
                stop.wait(4.0)

        threading.Thread(target=dribble, daemon=True).start()
        t0 = time.monotonic()
        try:
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=args.seconds,
                                           source_address=("127.0.0.21", 0))
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                answer = tls.recv(32).split(b"\r\n")[0].decode()
        except OSError as exc:
            answer = f"no answer ({exc})"
        waited = time.monotonic() - t0
        stop.set()
        print(f"{args.connections} slow connections from one address: {accepted} accepted, {refused} refused; "
              f"a visitor waited {waited:.1f} s for '{answer}'; {len(held)} slow connections still open then")
        for tls in held:
            tls.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
