"""TLS of the admin page against the REAL server on loopback: AEAD suites only, a two-year certificate renewed
by the running service (issue 11, item 8)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

import pytest
from cryptography import x509

from edge.web import WebServer, create_app
from edge.web import tls
from edge.web.tls import CERT_NAME, KEY_NAME, ensure_certificate
from web_fixtures import make_backend


@pytest.fixture()
def serve(tmp_path):
    servers = []

    def start():
        cfg, store, log = make_backend(tmp_path, host="127.0.0.1", port=0)
        server = WebServer(cfg, create_app(cfg, store=store, log=log, engine=None)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _handshake(server, *, version=None, ciphers=None):
    """(protocol, cipher name, served certificate DER) of one handshake, or the SSLError it raised."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version(), s.cipher()[0], s.getpeercert(binary_form=True)


def test_tls_1_2_offers_only_aead_suites(serve):
    server = serve()
    for cbc in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA",
                "ECDHE-ECDSA-AES256-SHA"):
        with pytest.raises(ssl.SSLError):
            _handshake(server, version=ssl.TLSVersion.TLSv1_2, ciphers=cbc)
    version, cipher, _ = _handshake(server, version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and ("GCM" in cipher or "CHACHA20" in cipher)
    assert _handshake(server)[0] == "TLSv1.3"


def test_the_certificate_lasts_two_years(tmp_path):
    cert_path, _, _ = ensure_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=731)


def _install(tmp_path, days):
    cert, cert_pem, key_pem = tls._generate("127.0.0.1", days=days)
    (tmp_path / CERT_NAME).write_bytes(cert_pem)
    (tmp_path / KEY_NAME).write_bytes(key_pem)
    for name in (CERT_NAME, KEY_NAME):
        (tmp_path / name).chmod(0o600)
    return tls.fingerprint(cert)


def test_a_ten_year_certificate_from_an_older_version_is_replaced(tmp_path):
    old = _install(tmp_path, days=3650)
    assert ensure_certificate(tmp_path)[2] != old


def test_the_running_page_renews_its_certificate_before_it_expires(serve, tmp_path):
    soon = _install(tmp_path, days=400)
    server = serve()
    assert server.fingerprint == soon
    assert server.renew_certificate() is False                  # 400 days left: nothing to do
    _install(tmp_path, days=20)                                  # the same page, twenty days from expiry
    server.fingerprint = tls.fingerprint(x509.load_pem_x509_certificate((tmp_path / CERT_NAME).read_bytes()))
    server._adapter.context.load_cert_chain(str(tmp_path / CERT_NAME), str(tmp_path / KEY_NAME))
    assert server.renew_certificate() is True
    served = x509.load_der_x509_certificate(_handshake(server)[2])
    assert tls.fingerprint(served) == server.fingerprint
    assert served.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=700)
