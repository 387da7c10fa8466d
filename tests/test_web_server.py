"""The security-critical paths against the REAL cheroot server on 127.0.0.1 (HTTPS, default bcrypt cost).

Clients are plain http.client/ssl; source addresses 127.0.0.2-127.0.0.9 (all loopback) stand for different
client machines, so the per-address throttle can be tested for real.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import ssl
import stat
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from edge.errors import ConfigError
from edge.web import WebServer, create_app
from edge.web.tls import CERT_NAME, KEY_NAME
from web_fixtures import PASSWORD, csrf_of, make_backend, reopen_store


class Browser:
    """A tiny cookie-keeping HTTP(S) client bound to one loopback source address."""

    def __init__(self, server: WebServer, source: str = "127.0.0.1"):
        self.server, self.source = server, source
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def connection(self) -> http.client.HTTPConnection:
        if self.server.https:
            ctx = ssl.create_default_context(cafile=str(self.server.cert_path_for_tests))
            return http.client.HTTPSConnection("localhost", self.server.port, context=ctx, timeout=20,
                                               source_address=(self.source, 0))
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20,
                                          source_address=(self.source, 0))

    def request(self, method: str, path: str, fields: dict | None = None, headers: dict | None = None):
        conn = self.connection()
        headers = dict(headers or {})
        body = None
        if fields is not None:
            body = urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=headers)
            res = conn.getresponse()
            text = res.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for header in res.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel["expires"] and "1970" in morsel["expires"] or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return res.status, res.headers, text

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields, token_from: str | None = None):
        if token_from is not None:
            fields = dict(fields, csrf_token=csrf_of(self.get(token_from)[2]))
        return self.request("POST", path, fields)

    def login(self, username, password=PASSWORD):
        return self.post("/login", {"username": username, "password": password}, token_from="/login")


def serve(state_dir, **web):
    cfg, store, log = make_backend(state_dir, host="127.0.0.1", port=0, **web)
    app = create_app(cfg, store=store, log=log, engine=None)
    server = WebServer(cfg, app).start()
    server.cert_path_for_tests = cfg.state_dir / CERT_NAME
    return cfg, store, log, app, server


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    cfg, store, log, app, server = serve(tmp_path_factory.mktemp("state"))
    store.add_user(username="alice", email="alice@example.org", password=PASSWORD, role="admin", status="active")
    yield cfg, store, log, app, server
    server.stop()


def test_https_with_a_private_self_signed_certificate_whose_fingerprint_is_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.web")
    cfg, store, log, app, server = serve(tmp_path)
    try:
        for name in (CERT_NAME, KEY_NAME):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
        assert [t for t in threading.enumerate() if t.name == "web"]
        assert server.url == f"https://127.0.0.1:{server.port}/" and server.port > 0
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            served = tls.getpeercert(binary_form=True)
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert hashlib.sha256(served).hexdigest().upper() == server.fingerprint.replace(":", "")
        assert server.fingerprint in caplog.text
        status, headers, text = Browser(server).get("/login")        # verifies against the certificate itself
        assert status == 200 and "Log in" in text
        assert headers["X-Frame-Options"] == "DENY"
    finally:
        server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_a_busy_port_is_a_clear_error(site, tmp_path):
    cfg, store, log, app, server = site
    other = WebServer(cfg.replace("web", port=server.port), app)
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        other.start()


def test_session_cookie_is_strict_secure_httponly_and_rotated_at_login(site):
    cfg, store, log, app, server = site
    b = Browser(server, "127.0.0.2")
    assert b.get("/home")[0] == 303
    b.get("/login")
    pre = dict(b.cookies)
    status, headers, _ = b.login("alice")
    assert status == 303 and headers["Location"].endswith("/home")
    header = [h for h in b.set_cookie_headers if h.startswith("__Host-edge_session=")][-1]
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path"} <= set(attrs)
    assert attrs["samesite"].lower() == "samesite=strict" and attrs["path"] == "Path=/"
    token = b.cookies["__Host-edge_session"]
    assert len(token) >= 40 and token not in pre.values() and "__Host-edge_pre" not in b.cookies
    assert b.get("/home")[0] == 200
    b.post("/login", {"username": "alice", "password": PASSWORD}, token_from="/home")
    assert b.cookies["__Host-edge_session"] != token
    thief = Browser(server, "127.0.0.3")
    thief.cookies["__Host-edge_session"] = token
    assert thief.get("/home")[0] == 303                              # the old token died at re-login


def test_idle_and_absolute_timeouts(site):
    cfg, store, log, app, server = site
    sessions = app.web.sessions
    now = [time.monotonic()]
    sessions.clock = lambda: now[0]
    try:
        b = Browser(server, "127.0.0.4")
        b.login("alice")
        now[0] += cfg.web.session_idle_minutes * 60 - 5
        assert b.get("/home")[0] == 200                              # in use: still valid
        now[0] += cfg.web.session_idle_minutes * 60 + 1
        status, headers, _ = b.get("/home")
        assert status == 303 and headers["Location"].endswith("/login")
        b.login("alice")
        step, start = cfg.web.session_idle_minutes * 60 - 1, now[0]
        while now[0] + step < start + cfg.web.session_absolute_hours * 3600:
            now[0] += step
            assert b.get("/users")[0] == 200
        now[0] += 2 * step
        assert b.get("/users")[0] == 303                             # absolute limit, however busy
    finally:
        sessions.clock = time.monotonic


def test_forms_need_the_csrf_token_of_their_own_session(site):
    cfg, store, log, app, server = site
    admin, other = Browser(server, "127.0.0.5"), Browser(server, "127.0.0.5")
    admin.login("alice")
    other.login("alice")
    before = store.revision
    assert admin.post("/settings", {"unlock_seconds": "7"})[0] == 403
    assert admin.post("/settings", {"unlock_seconds": "7", "csrf_token": "x" * 43})[0] == 403
    stolen = csrf_of(other.get("/home")[2])
    status, _, text = admin.post("/settings", {"unlock_seconds": "7", "csrf_token": stolen})
    assert status == 403 and "did not come from this site" in text
    stranger = Browser(server, "127.0.0.6")
    assert stranger.post("/login", {"username": "alice", "password": PASSWORD})[0] == 403
    assert stranger.post("/signup", {"username": "mallory", "email": "m@x.org", "password": PASSWORD,
                                     "confirm": PASSWORD})[0] == 403
    assert store.revision == before and store.find_user("mallory") is None


def test_login_throttle_slows_the_guesser_and_never_locks_out_the_owner(tmp_path, caplog):
    """Issue 11, item 3: five wrong passwords from one machine used to lock the admin everywhere for 15
    minutes, and lock everyone behind that machine's address too."""
    caplog.set_level(logging.DEBUG)
    cfg, store, log, app, server = serve(tmp_path, login_max_failures=3)
    try:
        store.add_user(username="alice", email="a@x.org", password=PASSWORD, role="admin", status="active")
        store.add_user(username="bob", email="b@x.org", password=PASSWORD, status="active")
        assert Browser(server, "127.0.0.7").login("bob", PASSWORD)[0] == 303   # bob logs in from .7 earlier
        attacker = Browser(server, "127.0.0.7")
        secret_guess = "guess-Pa55word-%d"
        codes = [attacker.login("alice", secret_guess % i)[0] for i in range(3)]
        assert codes == [200, 200, 429]
        status, headers, text = attacker.login("alice", PASSWORD)
        assert status == 429 and "Too many failed logins" in text and int(headers["Retry-After"]) >= 30
        assert Browser(server, "127.0.0.8").login("alice", PASSWORD)[0] == 303   # the owner elsewhere gets in
        assert Browser(server, "127.0.0.7").login("bob", PASSWORD)[0] == 303     # so does bob behind the NAT
        failed = list(log.events(kind="login_failed"))
        assert [(e["user"], e["source"]) for e in failed] == [("alice", "127.0.0.7")] * 3
        everything = json.dumps(list(log.events())) + caplog.text
        assert "guess-Pa55word" not in everything and PASSWORD not in everything
    finally:
        server.stop()


def test_uploads_over_the_limit_are_refused_before_the_body_is_read(site):
    cfg, store, log, app, server = site
    b = Browser(server, "127.0.0.5")
    b.login("alice")
    token = csrf_of(b.get("/home")[2])
    before = store.revision
    conn = b.connection()
    conn.putrequest("POST", f"/users/{store.find_user('alice').id}/enrol")
    conn.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in b.cookies.items()))
    conn.putheader("Content-Type", "multipart/form-data; boundary=xxx")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))         # announced, never sent
    conn.endheaders()
    conn.send(b"--xxx\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode())
    res = conn.getresponse()                                         # answered without waiting for 50 MB
    text = res.read().decode()
    conn.close()
    assert res.status == 413 and "limited to 10 MB" in text
    assert res.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert store.revision == before and reopen_store(store).revision == before


def test_chunked_uploads_without_a_length_are_refused(site):
    cfg, store, log, app, server = site
    b = Browser(server, "127.0.0.5")
    b.login("alice")
    conn = b.connection()
    conn.putrequest("POST", "/recognize")
    conn.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in b.cookies.items()))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"5\r\nhello\r\n")
    res = conn.getresponse()
    assert res.status == 411 and "Content-Length" in res.read().decode()
    conn.close()


def test_plain_http_only_when_configured(tmp_path):
    cfg, store, log, app, server = serve(tmp_path, https=False)
    try:
        store.add_user(username="alice", email="a@x.org", password=PASSWORD, role="admin", status="active")
        assert server.url.startswith("http://") and server.fingerprint is None
        assert not (tmp_path / CERT_NAME).exists()
        b = Browser(server)
        assert b.login("alice")[0] == 303
        header = [h for h in b.set_cookie_headers if h.startswith("edge_session=")][-1]
        assert "HttpOnly" in header and "Secure" not in header and "samesite=strict" in header.lower()
        assert b.get("/home")[0] == 200
    finally:
        server.stop()
