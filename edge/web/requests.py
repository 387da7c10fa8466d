"""Request helpers every page uses: reading form fields and uploads with a clear 400 for malformed bodies."""

from __future__ import annotations

import bottle
from bottle import HTTPError, request


def form_value(name: str, default: str = "") -> str:
    """A text field of the submitted form ('' when absent); malformed bodies become a 400."""
    try:
        value = request.forms.getunicode(name)
    except (bottle.MultipartError, ValueError, UnicodeError):
        raise HTTPError(400, "The form data could not be read.") from None
    return default if value is None else value


def uploaded_files(name: str) -> list:
    try:
        return [f for f in request.files.getall(name) if getattr(f, "raw_filename", "")]
    except (bottle.MultipartError, ValueError, UnicodeError):
        raise HTTPError(400, "The uploaded files could not be read.") from None


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


def redirect(path: str, code: int = 303):
    """Send the browser to ``path`` on this site with a relative ``Location``: never built from the request's
    ``Host`` or ``X-Forwarded-Host``, which a client chooses (bottle.redirect makes an absolute URL from them)."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"redirect to a path on this site, not {path!r}")
    res = bottle.response.copy(cls=bottle.HTTPResponse)     # keeps the cookies set so far (a new session)
    res.status = code
    res.body = ""
    res.set_header("Location", path)
    raise res
