"""The threaded production WSGI server (cheroot) that serves the admin app.

HTTPS by default with the self-signed certificate from :mod:`edge.web.tls`; plain HTTP only when
``web.https = false``. The socket is bound in :meth:`WebServer.start` in the caller's thread, so a busy port is
reported at once as a clear error rather than dying silently in the background thread.
"""

from __future__ import annotations

import logging
import ssl
import threading

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from ..errors import ConfigError
from .tls import ensure_certificate

logger = logging.getLogger(__name__)


def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's messages through ``logging``: dropped TLS handshakes (a browser that does not trust the
    self-signed certificate yet) are routine, so only real errors are logged above DEBUG."""
    if level >= logging.ERROR or traceback:
        logger.error("web server: %s", msg, exc_info=traceback)
    else:
        logger.debug("web server: %s", msg)


class WebServer:
    """One cheroot server in a background thread named ``web``; ``port=0`` in the configuration picks a free port."""

    def __init__(self, cfg, app, *, threads: int = 8):
        self._cfg = cfg
        self._app = app
        self._threads = threads
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None
        self.host = cfg.web.host
        self.port: int = cfg.web.port
        self.https: bool = cfg.web.https
        self.fingerprint: str | None = None

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
        server = wsgi.Server((self.host, self.port), self._app, numthreads=self._threads,
                             server_name="edge-face", shutdown_timeout=2)
        # No cheroot body limit: the app refuses oversized uploads itself (413, before reading the body,
        # with the site's page and headers), and cheroot closes the connection on 413 without draining it.
        server.error_log = _cheroot_log  # type: ignore[method-assign]  # cheroot's documented hook
        if self.https:
            cert, key, self.fingerprint = ensure_certificate(self._cfg.state_dir, self.host)
            adapter = BuiltinSSLAdapter(str(cert), str(key))
            adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
            server.ssl_adapter = adapter
        try:
            server.prepare()
        except OSError as exc:
            raise ConfigError(f"web.port: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = server.bind_addr[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="web", daemon=True)
        self._thread.start()
        if self.https:
            logger.info("web: admin page at %s (TLS certificate SHA-256 fingerprint %s)", self.url, self.fingerprint)
        else:
            logger.warning("web: admin page at %s WITHOUT TLS (web.https = false)", self.url)
        return self

    def stop(self) -> None:
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
