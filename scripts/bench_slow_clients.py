#!/usr/bin/env python3
"""Slow-client benchmark (issue 11, item 7): how long a visitor waits for the login page while one address holds
40 connections that send one header byte every 4 s, and how many of those connections the server accepted.

Runs the real WebServer (HTTPS, default limits) on loopback with a throwaway state folder.

    .venv/bin/python scripts/bench_slow_clients.py [--connections 40] [--seconds 60]
"""

from __future__ import annotations

import argparse
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
    from slow_clients import dribble, open_slow, visit
    from web_fixtures import make_backend

    with tempfile.TemporaryDirectory() as tmp:
        cfg, store, log = make_backend(Path(tmp), host="127.0.0.1", port=0)
        server = WebServer(cfg, create_app(cfg, store=store, log=log, engine=None)).start()
        held, refused = open_slow(cfg, server.port, args.connections, source="127.0.0.20")
        accepted = len(held)
        stop = threading.Event()
        threading.Thread(target=dribble, args=(held, stop, 4.0), daemon=True).start()
        t0 = time.monotonic()
        try:
            answer = visit(cfg, server.port, source="127.0.0.21", timeout=args.seconds).split(b"\r\n")[0].decode()
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
