"""The admin page's self-signed TLS certificate.

Generated on first start with ``cryptography`` (ECDSA P-256: quick to make and to use on a Pi) and kept in the
state directory with mode 0600. Its SHA-256 fingerprint goes to the log so the administrator can compare it
with what the browser shows before trusting the page. It is valid for two years and renewed by the running
service :data:`RENEW_DAYS` before it expires (``WebServer`` checks twice a day); an unreadable certificate, or one
made for longer than two years by an older version, is replaced.

On a full disk the new certificate cannot be saved: the page then runs with one held in memory (a Linux memfd)
and says so in the log, so a first start on a full SD card never stops the door.

:func:`harden` sets what the server accepts: TLS 1.2 or newer, and on TLS 1.2 only AEAD suites (AES-GCM,
ChaCha20-Poly1305) with forward secrecy; TLS 1.3 suites are all AEAD.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..atomic import write_durable
from ..errors import ConfigError, DiskFullError

logger = logging.getLogger(__name__)

CERT_NAME = "web-cert.pem"
KEY_NAME = "web-key.pem"
VALID_DAYS = 730
RENEW_DAYS = 30
TLS12_CIPHERS = ":".join(("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                          "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256",
                          "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"))
_in_memory: list[int] = []          # memfds of the certificate in use when the disk was full


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2+ with AEAD suites only, no compression, the server's order of preference."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated hex, the form browsers display."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def ensure_certificate(state_dir: str | os.PathLike, host: str = "") -> tuple[Path, Path, str]:
    """(certificate path, key path, fingerprint); creates or renews the pair when needed."""
    state = Path(state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"paths.state_dir: cannot create {state} for the TLS certificate: {exc.strerror}") from None
    cert_path, key_path = state / CERT_NAME, state / KEY_NAME
    cert = _load_valid(cert_path, key_path)
    if cert is None:
        cert, cert_pem, key_pem = _generate(host)
        try:
            write_durable(key_path, key_pem)                 # 0600 from the first byte, atomic, durable
            write_durable(cert_path, cert_pem)
        except DiskFullError:
            logger.error("web: the disk is full, so the new TLS certificate cannot be saved; the admin page uses "
                         "one held in memory (fingerprint %s) until space is freed (the page checks twice a day)",
                         fingerprint(cert))
            return _memory_file("web-cert", cert_pem), _memory_file("web-key", key_pem), fingerprint(cert)
        logger.info("web: generated a self-signed TLS certificate in %s (valid until %s)", cert_path,
                    cert.not_valid_after_utc.date())
    for path in (cert_path, key_path):
        _keep_private(path)
    return cert_path, key_path, fingerprint(cert)


def _memory_file(name: str, data: bytes) -> Path:
    """A path to ``data`` that uses no disk space: an anonymous memory file, readable through /proc."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    _in_memory.append(fd)
    while len(_in_memory) > 4:                          # the pair before the previous one is no longer used
        os.close(_in_memory.pop(0))
    return Path(f"/proc/self/fd/{fd}")


def _load_valid(cert_path: Path, key_path: Path) -> x509.Certificate | None:
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("web: the TLS certificate or key in %s is unreadable (%s); making a new one",
                    cert_path.parent, type(exc).__name__)
        return None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        logger.warning("web: the TLS key does not match the certificate; making a new pair")
        return None
    if cert.not_valid_after_utc <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=RENEW_DAYS):
        logger.warning("web: the TLS certificate expires on %s; making a new one", cert.not_valid_after_utc.date())
        return None
    if cert.not_valid_after_utc - cert.not_valid_before_utc > dt.timedelta(days=VALID_DAYS + 1):
        logger.warning("web: the TLS certificate was made for more than %d days; making a new one (the browser "
                       "will show a new fingerprint)", VALID_DAYS)
        return None
    return cert


def _generate(host: str, *, days: int = VALID_DAYS) -> tuple[x509.Certificate, bytes, bytes]:
    """A new key and self-signed certificate, and both as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname() or "edge-face"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-face (self-signed)")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(_alt_names(hostname, host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


def _alt_names(hostname: str, host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for dns in dict.fromkeys((hostname, f"{hostname}.local")):
        try:
            names.append(x509.DNSName(dns))
        except ValueError:
            pass
    ips = {"127.0.0.1", "::1"}
    try:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            ips.add(str(ip))
    except ValueError:
        if host and host not in (hostname, "localhost"):
            names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
    return names


def _keep_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != 0o600:
        logger.warning("web: %s had mode %o; setting it to 600", path, mode)
        os.chmod(path, 0o600)
