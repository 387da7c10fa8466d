"""The admin page's building blocks: sessions, CSRF tokens, TLS certificate, CSV export."""

from __future__ import annotations

import csv
import io
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from edge.web.csrf import CsrfGuard, tokens_match
from edge.web.display import events_csv, safe_cell
from edge.web.sessions import SessionStore
from edge.web.tls import CERT_NAME, KEY_NAME, ensure_certificate


class Clock:
    """A hand-driven monotonic clock, so timeouts are tested without sleeping."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# -- sessions ---------------------------------------------------------------------------------------------
def test_session_tokens_are_random_and_rotate():
    sessions = SessionStore(idle_seconds=60, absolute_seconds=3600)
    a, b = sessions.create("u1"), sessions.create("u1")
    assert a.token != b.token and a.csrf != b.csrf and len(a.token) >= 40
    assert sessions.get(a.token) is a and sessions.get(b.token) is b
    assert sessions.get(a.token + "x") is None and sessions.get("") is None and sessions.get(None) is None


def test_session_idle_timeout_is_renewed_by_use():
    clock = Clock()
    sessions = SessionStore(idle_seconds=60, absolute_seconds=3600, clock=clock)
    s = sessions.create("u1")
    clock.now += 59
    assert sessions.get(s.token) is s          # used: idle timer restarts
    clock.now += 59
    assert sessions.get(s.token) is s
    clock.now += 61
    assert sessions.get(s.token) is None       # idle too long
    assert sessions.get(s.token) is None       # and gone for good


def test_session_absolute_timeout_ends_even_a_busy_session():
    clock = Clock()
    sessions = SessionStore(idle_seconds=60, absolute_seconds=300, clock=clock)
    s = sessions.create("u1")
    for _ in range(5):
        clock.now += 50
        assert sessions.get(s.token) is s
    clock.now += 51
    assert sessions.get(s.token) is None


def test_destroy_user_ends_all_their_sessions_only():
    sessions = SessionStore(idle_seconds=60, absolute_seconds=3600)
    a1, a2, b = sessions.create("a"), sessions.create("a"), sessions.create("b")
    assert sessions.destroy_user("a") == 2
    assert sessions.get(a1.token) is None and sessions.get(a2.token) is None
    assert sessions.get(b.token) is b


def test_session_store_is_bounded():
    sessions = SessionStore(idle_seconds=60, absolute_seconds=3600, max_sessions=3)
    made = [sessions.create(f"u{i}") for i in range(5)]
    assert len(sessions) == 3
    assert sessions.get(made[-1].token) is not None


# -- CSRF -------------------------------------------------------------------------------------------------
def test_pre_session_tokens_are_bound_to_their_nonce_and_secret():
    guard = CsrfGuard()
    nonce = guard.new_nonce()
    token = guard.token_for(nonce)
    assert guard.check_pre_session(nonce, token)
    assert not guard.check_pre_session(guard.new_nonce(), token)
    assert not guard.check_pre_session(nonce, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not guard.check_pre_session(nonce, "") and not guard.check_pre_session(None, token)
    assert not CsrfGuard().check_pre_session(nonce, token)          # another process's secret


def test_tokens_match_rejects_missing_values():
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd") and not tokens_match("", "") and not tokens_match(None, "x")
    assert not tokens_match("abc", "ab\udcff")


# -- TLS --------------------------------------------------------------------------------------------------
def test_certificate_is_created_private_and_reused(tmp_path):
    cert_path, key_path, fp = ensure_certificate(tmp_path / "state", "192.168.1.20")
    for path in (cert_path, key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert fp == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "192.168.1.20" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert ensure_certificate(tmp_path / "state")[2] == fp              # same certificate next start


def test_certificate_permissions_are_repaired_and_bad_pairs_replaced(tmp_path):
    cert_path, key_path, fp = ensure_certificate(tmp_path)
    os.chmod(key_path, 0o644)
    assert ensure_certificate(tmp_path)[2] == fp
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    key_path.write_bytes(b"garbage")
    _, _, new_fp = ensure_certificate(tmp_path)
    assert new_fp != fp
    assert (tmp_path / CERT_NAME).is_file() and (tmp_path / KEY_NAME).is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


# -- CSV --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"])
def test_csv_cells_that_look_like_formulas_are_quoted(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text, cell", [("\tcmd", "cmd"), ("\r=1", "'=1"), ("\u202e=1", "'=1")])
def test_csv_cells_lose_control_characters_before_the_formula_check(text, cell):
    assert safe_cell(text) == cell


def test_csv_export_keeps_numbers_and_plain_text():
    out = events_csv([{"time": 0, "kind": "grant", "user": "=cmd|' /C calc'!A0", "similarity": -0.25,
                       "decision": None, "source": "camera", "admin": "@x"}])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["time", "kind", "user"]
    assert rows[1][1] == "grant" and rows[1][2].startswith("'=") and rows[1][3] == "-0.25"
    assert rows[1][5] == "camera"
    assert safe_cell(3) == 3 and safe_cell(None) == "" and safe_cell("alice") == "alice"
