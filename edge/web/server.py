"""The threaded production WSGI server (cheroot) that serves the admin app.

HTTPS by default with the self-signed certificate from :mod:`edge.web.tls`; plain HTTP only when
``web.https = false``. The socket is bound in :meth:`WebServer.start` in the caller's thread, so a busy port is
reported at once as a clear error rather than dying silently in the background thread.

Slow clients cannot starve the page (issue 11, item 7): a connection takes a worker thread only once it has
sent something (new connections wait in cheroot's selector, not in a worker; the TLS handshake happens in the
worker, not in the accepting thread); from then on the handshake, request line and headers must arrive within
``header_seconds`` or the connection is cut; and one client address may hold at most ``per_address``
connections at once (a browser uses up to six), the rest are closed as soon as they are accepted.

The door comes first: worker threads run at a lower CPU priority (nice +``WEB_NICE``, per thread on Linux), so
decoding an upload never takes CPU time the door's recognition thread wants.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections import Counter

from cheroot import connections, server as cheroot_server, wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from ..errors import ConfigError
from .tls import ensure_certificate, harden

logger = logging.getLogger(__name__)


def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's messages through ``logging``: dropped TLS handshakes (a browser that does not trust the
    self-signed certificate yet) and clients that vanish mid-request are routine, so only real errors (cheroot
    logs an application's exception at ERROR) are logged above DEBUG."""
    if level >= logging.ERROR:
        logger.error("web server: %s", msg, exc_info=traceback)
    else:
        logger.debug("web server: %s", msg)


HEADER_SECONDS = 10.0         # handshake + request line + headers; a real browser needs well under a second
PER_ADDRESS = 8               # open connections per client address: the six a browser opens per site, plus two
                              # it has closed that the server has not seen close yet (a live view stream that
                              # was left ends at its next frame's write)
MAX_CONNECTIONS = 200         # open connections in all: far below the process's file limit
WEB_NICE = 10                 # how much nicer than the door the page's worker threads are
RENEW_CHECK_SECONDS = 12 * 3600   # how often the running page checks that its certificate is not about to expire


class _Deadlines:
    """Cuts connections that have not delivered their request headers by their deadline (one thread, ``web-deadline``)."""

    def __init__(self) -> None:
        self._due: dict[_Connection, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-deadline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def set(self, conn, seconds: float) -> None:
        with self._lock:
            self._due[conn] = time.monotonic() + seconds

    def clear(self, conn) -> None:
        with self._lock:
            self._due.pop(conn, None)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                late = [c for c, due in self._due.items() if due <= now]
                for conn in late:
                    del self._due[conn]
            for conn in late:
                conn.cut()


class _Request(cheroot_server.HTTPRequest):
    def parse_request(self):
        try:
            super().parse_request()
        finally:
            self.conn.server.deadlines.clear(self.conn)     # headers are in: the body has its own timeouts

    def simple_response(self, status, msg=""):
        if self.conn.was_cut:
            return          # the deadline closed the socket: nobody is left to read an error page
        super().simple_response(status, msg)


class _Connection(cheroot_server.HTTPConnection):
    """A connection that counts against its address, does its TLS handshake in the worker and has a deadline."""

    RequestHandlerClass = _Request
    address = None
    _released = False
    was_cut = False

    def communicate(self):
        server = self.server
        _be_nice()
        server.deadlines.set(self, server.header_seconds)
        try:
            if not self._handshake():
                return False
            if self.was_cut:
                return False
            return super().communicate()
        except OSError:
            return False        # the client vanished mid-request and cheroot's error page could not be sent
        finally:
            server.deadlines.clear(self)

    def _handshake(self) -> bool:
        sock = self.socket
        if not isinstance(sock, ssl.SSLSocket) or getattr(self, "_tls_done", False):
            return True
        try:
            sock.do_handshake()
        except ssl.SSLError as exc:
            if "http request" in str(exc).lower():      # plain HTTP to the HTTPS port: say so in plain HTTP
                _answer_plain_http(sock)
            return False
        except (OSError, ValueError):                   # dropped, timed out or cut by the deadline
            return False
        self._tls_done = True
        return True

    def cut(self) -> None:
        """Called by the deadline thread: end the connection now; the worker's blocked read returns at once."""
        self.was_cut = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _conditional_error(self, req, response):
        if not self.was_cut:
            super()._conditional_error(req, response)

    def close(self):
        try:
            super().close()
        finally:
            if not self._released:
                self._released = True
                self.server.connection_closed(self.address)


_niceness = threading.local()


def _be_nice() -> None:
    """Lower this worker thread's CPU priority once (Linux keeps a nice value per thread)."""
    if getattr(_niceness, "done", False):
        return
    _niceness.done = True
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WEB_NICE))
    except (OSError, AttributeError):
        pass        # not Linux, or not allowed: the page still works, only without the courtesy


def _answer_plain_http(sock: ssl.SSLSocket) -> None:
    msg = b"This page only speaks HTTPS: use https:// in the address."
    reply = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
             b"Content-Length: " + str(len(msg)).encode() + b"\r\n\r\n" + msg)
    try:
        socket.socket.send(sock, reply)     # the raw TCP socket under the failed TLS layer
    except OSError:
        pass


class _LazyTLS(BuiltinSSLAdapter):
    """Wraps without the handshake: the accepting thread must never wait for a client."""

    def wrap(self, sock):
        tls = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        return tls, {"wsgi.url_scheme": "https", "HTTPS": "on"}


class _Connections(connections.ConnectionManager):
    """Accepts with the per-address and total caps, and parks new connections until they send something."""

    def _from_server_socket(self, server_socket):
        srv = self.server
        try:
            sock, addr = server_socket.accept()
        except (socket.timeout, BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None
        address = addr[0] if isinstance(addr, tuple) and addr else "?"
        if not srv.connection_opened(address):
            try:
                sock.close()
            except OSError:
                pass
            return None
        try:
            connections.prevent_socket_inheritance(sock)
            sock.settimeout(srv.timeout)
            makefile, env = connections.MakeFile, {}
            if srv.ssl_adapter is not None:
                sock, env = srv.ssl_adapter.wrap(sock)
                makefile = srv.ssl_adapter.makefile
            conn = srv.ConnectionClass(srv, sock, makefile)
        except Exception:
            srv.connection_closed(address)
            try:
                sock.close()
            except OSError:
                pass
            return None
        conn.address = address
        conn.remote_addr, conn.remote_port = address, addr[1] if isinstance(addr, tuple) and len(addr) > 1 else 0
        conn.ssl_env = env
        self.put(conn)            # into the selector: a worker takes it when it has sent something
        return None


class _Server(wsgi.Server):
    ConnectionClass = _Connection

    def __init__(self, *args, header_seconds: float, per_address: int, max_connections: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_seconds = float(header_seconds)
        self.per_address = int(per_address)
        self.max_connections = int(max_connections)
        self.deadlines = _Deadlines()
        self._open: Counter[str] = Counter()
        self._open_lock = threading.Lock()
        self._refusals = 0

    def prepare(self):
        super().prepare()
        plain = self._connections
        self._connections = _Connections(self)
        plain._selector.close()               # the default manager never ran; the listening socket stays open
        self.deadlines.start()

    def stop(self):
        try:
            super().stop()
        finally:
            self.deadlines.stop()

    def connection_opened(self, address: str) -> bool:
        with self._open_lock:
            if self._open[address] >= self.per_address or sum(self._open.values()) >= self.max_connections:
                self._refusals += 1
                if self._refusals in (1, 10, 100) or self._refusals % 1000 == 0:
                    logger.warning("web: refused connections over the limit (%d per address, %d in all); "
                                   "%d so far, the latest from %s", self.per_address, self.max_connections,
                                   self._refusals, address)
                return False
            self._open[address] += 1
            return True

    def connection_closed(self, address) -> None:
        if address is None:
            return
        with self._open_lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]


class WebServer:
    """One cheroot server in a background thread named ``web``; ``port=0`` in the configuration picks a free port."""

    def __init__(self, cfg, app, *, threads: int = 16, header_seconds: float = HEADER_SECONDS,
                 per_address: int = PER_ADDRESS, max_connections: int = MAX_CONNECTIONS):
        self._cfg = cfg
        self._app = app
        self._threads = threads
        self._header_seconds = float(header_seconds)
        self._per_address = int(per_address)
        self._max_connections = int(max_connections)
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None
        self.host = cfg.web.host
        self.port: int = cfg.web.port
        self.https: bool = cfg.web.https
        self.fingerprint: str | None = None
        self._adapter: _LazyTLS | None = None
        self._cert_in_memory = False
        self._stopping = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.https else 'http'}://{host}:{self.port}/"

    def start(self) -> "WebServer":
        if self._thread is not None:
            raise RuntimeError("web server already started")
        server = _Server((self.host, self.port), self._app, numthreads=self._threads,
                         server_name="edge-face", shutdown_timeout=2, header_seconds=self._header_seconds,
                         per_address=self._per_address, max_connections=self._max_connections)
        # No cheroot body limit: the app refuses oversized uploads itself (413, before reading the body,
        # with the site's page and headers), and cheroot closes the connection on 413 without draining it.
        server.error_log = _cheroot_log  # type: ignore[method-assign]  # cheroot's documented hook
        if self.https:
            cert, key, self.fingerprint = ensure_certificate(self._cfg.state_dir, self.host)
            self._cert_in_memory = str(cert).startswith("/proc/")
            adapter = _LazyTLS(str(cert), str(key))
            harden(adapter.context)
            server.ssl_adapter = self._adapter = adapter
        try:
            server.prepare()
        except OSError as exc:
            raise ConfigError(f"web.port: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = server.bind_addr[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="web", daemon=True)
        self._thread.start()
        if self.https:
            self._stopping.clear()
            self._renewer = threading.Thread(target=self._renew_regularly, name="web-cert", daemon=True)
            self._renewer.start()
        if self.https:
            logger.info("web: admin page at %s (TLS certificate SHA-256 fingerprint %s)", self.url, self.fingerprint)
        else:
            logger.warning("web: admin page at %s WITHOUT TLS (web.https = false)", self.url)
        return self

    def renew_certificate(self) -> bool:
        """Replace the certificate if it is about to expire (or was only in memory and can now be saved); new
        connections get the new one at once. True if it changed."""
        if self._adapter is None:
            return False
        cert, key, fingerprint = ensure_certificate(self._cfg.state_dir, self.host)
        in_memory = str(cert).startswith("/proc/")
        if fingerprint == self.fingerprint or (in_memory and self._cert_in_memory):
            return False            # unchanged, or the disk is still full: keep the certificate browsers know
        self._adapter.context.load_cert_chain(str(cert), str(key))
        self.fingerprint, self._cert_in_memory = fingerprint, in_memory
        logger.warning("web: the admin page now uses a new TLS certificate (SHA-256 fingerprint %s)", fingerprint)
        return True

    def _renew_regularly(self) -> None:
        while not self._stopping.wait(RENEW_CHECK_SECONDS):
            try:
                self.renew_certificate()
            except Exception:
                logger.exception("web: could not renew the TLS certificate; the current one stays in use")

    def stop(self) -> None:
        self._stopping.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.stop()
        if thread is not None:
            thread.join(timeout=10)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
