"""The Bottle application: the per-area page apps merged into one, with body bounds, security headers and
error pages.

Every route declares who may use it (``access="public" | "user" | "active" | "admin"``); the guard plugin
(:mod:`edge.web.context`) enforces it together with the CSRF check. Uploads are bounded before a byte of the body
is read. Pages live in ``pages_account`` (sign-up, login, dashboard), ``pages_users`` (users, enrolment) and
``pages_admin`` (log, settings, test recognition, remote unlock) and ``pages_views`` (live view, faces of
decisions, "enrol as", charts); this module only merges them. Imports go one
way: app -> pages_* -> context/requests/display/faces.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bottle
from bottle import HTTPError, request

from . import pages_account, pages_admin, pages_users, pages_views
from .context import ENVIRON_KEY, GuardPlugin, Web, current_web

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]
_SECURITY_NAMES = {name.lower() for name, _ in SECURITY_HEADERS}
AREAS = (pages_account.app, pages_users.app, pages_admin.app, pages_views.app)


class AdminApp(bottle.Bottle):
    """A Bottle app that adds the security headers to every response, error pages included."""

    web: Web

    def wsgi(self, environ, start_response):
        environ[ENVIRON_KEY] = self.web          # how module-level handlers find this app's context

        def start(status, headers, exc_info=None):
            headers = [h for h in headers if h[0].lower() not in _SECURITY_NAMES] + SECURITY_HEADERS
            if not environ.get("PATH_INFO", "").startswith("/static/"):
                headers = [h for h in headers if h[0].lower() != "cache-control"] + [("Cache-Control", "no-store")]
            return start_response(status, headers, exc_info)
        return super().wsgi(environ, start)


static_app = bottle.Bottle()
static_app.install(GuardPlugin())


@static_app.route("/static/<filename:path>", access="public")
def static(filename):
    return bottle.static_file(filename, root=str(STATIC))


def bound_body():
    """Refuse a body over the upload limit before any of it is read (Bottle never reads past the length)."""
    web = current_web()
    env = request.environ
    if "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise HTTPError(411, "Send the upload with a Content-Length.")
    try:
        length = int(env.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError(400, "Malformed Content-Length.") from None
    if length > web.max_body:
        raise HTTPError(413, f"Uploads are limited to {web.cfg.web.max_upload_mb:g} MB in total; "
                             "send fewer or smaller photographs.")


def error_page(err: HTTPError):
    web = current_web()
    if err.status_code >= 500:
        logger.error("web: %s %s failed: %s", request.method, request.path, err.exception or err.body)
    message = err.body if isinstance(err.body, str) else ""
    if err.status_code == 404 and (not message or message.startswith("Not found:")):
        message = "There is no such page."
    elif err.status_code == 405:
        message = "This page does not accept that kind of request."
    elif err.status_code == 500:
        message = "The page failed; the details are in the service log."
    try:
        if request.environ.get("edge.session", False) is False:
            web.load_session()
    except Exception:
        request.environ["edge.session"] = request.environ["edge.user"] = None
    return web.render("error.tpl", title=ERROR_TITLES.get(err.status_code, "Error"),
                      status=err.status_code, message=message)


ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
                411: "Length required", 413: "Upload too large", 429: "Too many attempts",
                500: "Something went wrong", 503: "Not available"}


def create_app(cfg, *, store, log, engine, controller=None) -> bottle.Bottle:
    """The admin web app for one store/log/engine; ``controller=None`` means no daemon is running."""
    web = Web(cfg, store=store, log=log, engine=engine, controller=controller)
    app = AdminApp()
    app.web = web
    # Bodies up to the upload limit stay in memory, so uploaded face photographs never touch the disk.
    bottle.BaseRequest.MEMFILE_MAX = max(bottle.BaseRequest.MEMFILE_MAX, web.max_body + 64 * 1024)
    app.add_hook("before_request", bound_body)
    for area in (static_app, *AREAS):
        app.merge(area)
    for code in ERROR_TITLES:
        app.error(code)(error_page)
    return app
