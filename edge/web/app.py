"""The Bottle application: request guards, rendering, error pages and security headers.

Every route declares who may use it (``access="public" | "user" | "active" | "admin"``); one plugin enforces
it together with the CSRF check, so no page can forget either. Uploads are bounded before a byte of the body is
read. Pages live in the ``pages_*`` modules; this module only wires them together.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import bottle
from bottle import HTTPError, request, response

from ..errors import EdgeError
from ..store import StoreInputError
from .csrf import CsrfGuard, tokens_match
from .sessions import SessionStore
from .throttle import LoginThrottle

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]
_SECURITY_NAMES = {name.lower() for name, _ in SECURITY_HEADERS}
ACCESS_LEVELS = ("public", "user", "active", "admin")



class AdminApp(bottle.Bottle):
    """A Bottle app that adds the security headers to every response, error pages included."""

    def wsgi(self, environ, start_response):
        def start(status, headers, exc_info=None):
            headers = [h for h in headers if h[0].lower() not in _SECURITY_NAMES] + SECURITY_HEADERS
            if not environ.get("PATH_INFO", "").startswith("/static/"):
                headers = [h for h in headers if h[0].lower() != "cache-control"] + [("Cache-Control", "no-store")]
            return start_response(status, headers, exc_info)
        return super().wsgi(environ, start)


class Web:
    """Everything the pages share: configuration, store, log, engine, controller, sessions, throttle, CSRF."""

    def __init__(self, cfg, *, store, log, engine, controller=None):
        self._cfg = cfg
        self.store = store
        self.log = log
        self.engine = engine
        self.controller = controller
        self.https = bool(cfg.web.https)
        self.max_body = int(cfg.web.max_upload_mb * 1024 * 1024)
        self.sessions = SessionStore(idle_seconds=cfg.web.session_idle_minutes * 60,
                                     absolute_seconds=cfg.web.session_absolute_hours * 3600)
        self.throttle = LoginThrottle(max_failures=cfg.web.login_max_failures,
                                      lock_seconds=cfg.web.login_lock_minutes * 60)
        self.csrf = CsrfGuard()
        prefix = "__Host-" if self.https else ""     # __Host- cookies need Secure, Path=/ and no Domain
        self.session_cookie = prefix + "edge_session"
        self.pre_cookie = prefix + "edge_pre"
        self.engine_lock = threading.Lock()          # the TFLite interpreter is not re-entrant

    @property
    def cfg(self):
        """The daemon's current configuration (it follows SIGHUP), or the one the app was built with."""
        return self.controller.config if self.controller is not None else self._cfg

    # -- who is asking --------------------------------------------------------------------------------------
    @property
    def session(self):
        return request.environ.get("edge.session")

    @property
    def user(self):
        return request.environ.get("edge.user")

    @property
    def client_addr(self) -> str:
        """The socket peer; X-Forwarded-For is ignored because any client can send it."""
        return request.environ.get("REMOTE_ADDR") or "unknown"

    def is_admin(self, user=None) -> bool:
        user = user or self.user
        return user is not None and user.role == "admin" and user.status == "active"

    def load_session(self) -> None:
        """Who is asking, re-checked against the database on every request (a disabled user is out at once)."""
        self.store.refresh()                          # follow changes made by the CLI (one stat when none)
        token = request.get_cookie(self.session_cookie)
        session = self.sessions.get(token)
        user = None
        if session is not None:
            user = self.store.get_user(session.user_id)
            if user is None or user.status == "disabled":
                self.sessions.destroy(token)
                session, user = None, None
        request.environ["edge.session"] = session
        request.environ["edge.user"] = user

    def start_session(self, user) -> None:
        """Log ``user`` in with a brand-new token (rotation), dropping any session this browser had."""
        self.sessions.destroy(request.get_cookie(self.session_cookie))
        session = self.sessions.create(user.id)
        response.set_cookie(self.session_cookie, session.token, path="/", httponly=True, secure=self.https,
                            samesite="strict")
        response.delete_cookie(self.pre_cookie, path="/", secure=self.https, httponly=True, samesite="strict")
        request.environ["edge.session"], request.environ["edge.user"] = session, user

    def end_session(self) -> None:
        self.sessions.destroy(request.get_cookie(self.session_cookie))
        response.delete_cookie(self.session_cookie, path="/", secure=self.https, httponly=True, samesite="strict")

    def flash(self, message: str) -> None:
        if self.session is not None:
            self.session.flash.append(message)

    # -- CSRF -----------------------------------------------------------------------------------------------
    def csrf_token(self) -> str:
        if self.session is not None:
            return self.session.csrf
        nonce = request.environ.get("edge.pre_nonce") or request.get_cookie(self.pre_cookie)
        if not nonce or len(nonce) > 64:
            nonce = self.csrf.new_nonce()
            response.set_cookie(self.pre_cookie, nonce, path="/", httponly=True, secure=self.https,
                                samesite="strict")
        request.environ["edge.pre_nonce"] = nonce
        return self.csrf.token_for(nonce)

    def check_csrf(self) -> None:
        given = form_value("csrf_token") or request.headers.get("X-CSRF-Token", "")
        if self.session is not None:
            ok = tokens_match(self.session.csrf, given)
        else:
            ok = self.csrf.check_pre_session(request.get_cookie(self.pre_cookie), given)
        if not ok:
            raise HTTPError(403, "This form has expired or did not come from this site. "
                                 "Reload the page and try again.")

    # -- rendering ------------------------------------------------------------------------------------------
    def render(self, name: str, **values) -> str:
        session = self.session
        flashes = []
        if session is not None and session.flash:
            flashes, session.flash = session.flash, []
        values.setdefault("title", "")
        values.setdefault("error", "")
        return bottle.template(name, template_lookup=[str(TEMPLATES)], user=self.user, web=self,
                               csrf_token=self.csrf_token(), flashes=flashes, **values)

    def after_change(self) -> None:
        """Tell the running daemon that users, templates or settings changed."""
        if self.controller is not None:
            try:
                self.controller.reload()
            except Exception:               # the change is saved; the daemon re-reads it at its next refresh
                logger.exception("web: the daemon did not accept a reload")

    def audit(self, kind: str, **fields) -> None:
        """Append to the encrypted access log; a failing log must not undo what was already saved."""
        try:
            self.log.append(kind, **fields)
        except EdgeError as exc:
            logger.error("web: could not write a %s event to the access log: %s", kind, exc)


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


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


class GuardPlugin:
    """Applies the route's ``access`` level and, for POST, the CSRF check."""

    name = "edge-guard"
    api = 2

    def __init__(self, web: Web):
        self.web = web

    def apply(self, callback, route):
        access = route.config.get("access", "user")
        if access not in ACCESS_LEVELS:
            raise ValueError(f"route {route.rule}: unknown access level {access!r}")
        web = self.web

        def guarded(*args, **kwargs):
            web.load_session()
            user = web.user
            if access != "public" and user is None:
                bottle.redirect("/login", 303)
            if request.method not in ("GET", "HEAD"):
                web.check_csrf()
            if access == "active" and user.status != "active":
                raise HTTPError(403, "Your account is waiting for approval by an administrator.")
            if access == "admin" and not web.is_admin(user):
                raise HTTPError(403, "This page is for administrators only.")
            try:
                return callback(*args, **kwargs)
            except StoreInputError as exc:          # a value the store refused: the person can fix it
                raise HTTPError(400, _sentence(exc)) from None
            except EdgeError as exc:                # database locked, camera gone, ...: written for people
                logger.error("web: %s %s: %s", request.method, request.path, exc)
                raise HTTPError(503, _sentence(exc)) from None

        return guarded


ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
                411: "Length required", 413: "Upload too large", 429: "Too many attempts",
                500: "Something went wrong", 503: "Not available"}


def create_app(cfg, *, store, log, engine, controller=None) -> bottle.Bottle:
    """The admin web app for one store/log/engine; ``controller=None`` means no daemon is running."""
    from . import pages_account, pages_admin, pages_users

    web = Web(cfg, store=store, log=log, engine=engine, controller=controller)
    app = AdminApp()
    app.web = web
    # Bodies up to the upload limit stay in memory, so uploaded face photographs never touch the disk.
    bottle.BaseRequest.MEMFILE_MAX = max(bottle.BaseRequest.MEMFILE_MAX, web.max_body + 64 * 1024)
    app.install(GuardPlugin(web))

    @app.hook("before_request")
    def _bound_body():
        env = request.environ
        if "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise HTTPError(411, "Send the upload with a Content-Length.")
        try:
            length = int(env.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HTTPError(400, "Malformed Content-Length.") from None
        if length > web.max_body:  # refused before any of the body is read; Bottle never reads past the length
            raise HTTPError(413, f"Uploads are limited to {cfg.web.max_upload_mb:g} MB in total; "
                                 "send fewer or smaller photographs.")

    @app.route("/static/<filename:path>", access="public")
    def static(filename):
        return bottle.static_file(filename, root=str(STATIC))

    pages_account.install(app, web)
    pages_users.install(app, web)
    pages_admin.install(app, web)

    def error_page(err: HTTPError):
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

    for code in ERROR_TITLES:
        app.error(code)(error_page)
    return app
