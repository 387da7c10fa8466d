"""CSRF tokens.

Signed-in pages use the random token stored in the server-side session. The login and signup forms come before
any session, so they use a pre-session nonce cookie and a token derived from it with an HMAC under a per-process
secret: a cross-site page can neither read the cookie nor compute the token. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class CsrfGuard:
    """Issues and checks the pre-session tokens; session tokens are compared with :func:`tokens_match`."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, nonce: str) -> str:
        mac = hmac.new(self._secret, b"pre-session:" + nonce.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return mac.hexdigest()

    def check_pre_session(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return tokens_match(self.token_for(nonce), token)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time equality that treats missing values as a mismatch."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))
