"""What every page shares: the :class:`Web` context of one app (configuration, store, log, engine,
controller, sessions, throttle, CSRF), how a handler finds it (:func:`current_web`), and the guard plugin that
applies each route's ``access`` level and the CSRF check, so no page can forget either.

Page handlers are module-level functions on per-area Bottle apps (``pages_*.app``), merged by
:func:`edge.web.app.create_app`; the app puts its :class:`Web` into the WSGI environ of every request.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import bottle
from bottle import HTTPError, request, response

from ..errors import EdgeError
from ..eventfaces import EventFaces
from ..eventindex import EventIndex
from ..ratelimit import RateLimit
from ..store import StoreInputError
from .csrf import CsrfGuard, tokens_match
from .heavy import HeavyGate
from .requests import form_value, redirect, sentence
from .sessions import SessionStore
from .throttle import LoginThrottle

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
ACCESS_LEVELS = ("public", "user", "active", "admin")
ENVIRON_KEY = "edge.web"


def current_web() -> "Web":
    """The :class:`Web` of the app serving this request."""
    return request.environ[ENVIRON_KEY]


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
                                      max_delay=cfg.web.login_lock_minutes * 60)
        self.csrf = CsrfGuard()
        self.heavy = HeavyGate(slots=1)              # photographs decoded and judged: one request at a time
        self.unlock_limit = RateLimit(events=5, seconds=600)      # remote unlocks per administrator
        self.signup_limit = RateLimit(events=3, seconds=3600)     # new accounts per client address
        prefix = "__Host-" if self.https else ""     # __Host- cookies need Secure, Path=/ and no Domain
        self.session_cookie = prefix + "edge_session"
        self.pre_cookie = prefix + "edge_pre"
        self.index = EventIndex(log)                 # the log's columns: charts and paging without decrypting a year
        self.faces = EventFaces.open(cfg, store.keyring)   # read here; the door keeps and prunes them

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
        session = self.sessions.create(user.id, privileged=user.role == "admin")
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


class GuardPlugin:
    """Applies the route's ``access`` level and, for POST, the CSRF check."""

    name = "edge-guard"
    api = 2

    def apply(self, callback, route):
        access = route.config.get("access", "user")
        if access not in ACCESS_LEVELS:
            raise ValueError(f"route {route.rule}: unknown access level {access!r}")
        heavy = route.config.get("heavy", False)

        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            web = current_web()
            web.load_session()
            user = web.user
            if access != "public" and user is None:
                redirect("/login", 303)
            if heavy:                               # before the CSRF check: that reads (and parses) the body
                with web.heavy():
                    return checked(web, user, *args, **kwargs)
            return checked(web, user, *args, **kwargs)

        def checked(web, user, *args, **kwargs):
            if request.method not in ("GET", "HEAD"):
                web.check_csrf()
            if access == "active" and user.status != "active":
                raise HTTPError(403, "Your account is waiting for approval by an administrator.")
            if access == "admin" and not web.is_admin(user):
                raise HTTPError(403, "This page is for administrators only.")
            try:
                return callback(*args, **kwargs)
            except StoreInputError as exc:          # a value the store refused: the person can fix it
                raise HTTPError(400, sentence(exc)) from None
            except EdgeError as exc:                # database locked, camera gone, ...: written for people
                logger.error("web: %s %s: %s", request.method, request.path, exc)
                raise HTTPError(503, sentence(exc)) from None

        return guarded
