"""Signing up, logging in and out, and the dashboard (live view, door health, latest decisions)."""

from __future__ import annotations

import logging
import math
import re

import bottle
from bottle import HTTPError, response

from ..errors import EdgeError
from ..lognames import journal_name
from ..store import BCRYPT_MAX_BYTES, PASSWORD_MIN_CHARS, StoreInputError
from .context import GuardPlugin, current_web
from .requests import form_value, redirect, sentence
from .charts import health_cards
from .display import DECISIONS, camera_state, format_time, recent_events, status_rows

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def password_problem(password: str, confirm: str) -> str:
    """'' when the new password is acceptable, else a sentence saying what to change."""
    if len(password) < PASSWORD_MIN_CHARS:
        return f"Choose a password of at least {PASSWORD_MIN_CHARS} characters."
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        return f"Choose a password of at most {BCRYPT_MAX_BYTES} bytes."
    if password != confirm:
        return "The two passwords differ; type the same password twice."
    return ""


app = bottle.Bottle()
app.install(GuardPlugin())


@app.get("/", access="public")
def index():                                     # the guard has already loaded the session
    web = current_web()
    redirect("/home" if web.user else "/login", 303)


# -- signup ---------------------------------------------------------------------------------------------
def signup_page(status=200, errors=None, **values):
    web = current_web()
    store = web.store
    response.status = status
    first = not store.users()
    mode = web.cfg.web.signup
    return web.render("signup.tpl", title="Create an account", errors=errors or {}, first=first,
                      username=values.get("username", ""), email=values.get("email", ""),
                      done=values.get("done", False), closed=mode == "closed" and not first,
                      invite_needed=mode == "invite" and not first)


def home_if_logged_in() -> None:
    """Someone logged in has nothing to do on the sign-up or login form: to their home page."""
    if current_web().user:
        redirect("/home", 303)


@app.get("/signup", access="public")
def signup_form():
    home_if_logged_in()
    return signup_page()


@app.post("/signup", access="public")
def signup():
    web = current_web()
    store = web.store
    username = form_value("username").strip()
    email = form_value("email").strip()
    password, confirm = form_value("password"), form_value("confirm")
    errors = {}
    if not USERNAME_RE.match(username):
        errors["username"] = ("Use 3 to 32 letters, digits, dots, dashes or underscores, "
                              "starting with a letter or digit.")
    if len(email) > 254 or not EMAIL_RE.match(email):
        errors["email"] = "Enter an e-mail address such as name@example.org."
    problem = password_problem(password, confirm)
    if problem:
        errors["password"] = problem
    if errors:
        return signup_page(400, errors, username=username, email=email)
    first = not store.users()
    mode = web.cfg.web.signup
    if not first and mode == "closed":
        return signup_page(403)
    if not first:
        wait = web.signup_limit.take(web.client_addr)
        if wait:
            too_many("Too many new accounts from this address", wait)
        if store.find_user(username) or store.find_user(email):
            # The same answer as a new account, after as much work: the page must not tell a stranger which
            # usernames and e-mail addresses exist (issue 11, item 8).
            store.check_password(username, password)
            return signup_page(200, done=True)
    try:   # the store decides, inside its transaction, whether this is the first account (-> admin)
        user = store.sign_up(username=username, email=email, password=password, invite=form_value("invite"),
                             require_invite=mode == "invite", max_pending=web.cfg.web.max_pending_accounts)
    except StoreInputError as exc:
        if "already taken" in str(exc) or "already belongs" in str(exc):     # lost a race for the name
            return signup_page(200, done=True)
        return signup_page(400, {"form": sentence(exc)}, username=username, email=email)
    except (EdgeError, ValueError) as exc:
        return signup_page(400, {"form": str(exc)}, username=username, email=email)
    web.audit("user_changed", user=user.username, user_id=user.id, action="signup", role=user.role, status=user.status,
              source=web.client_addr)
    logger.info("web: new %s account %s (%s)", user.role, journal_name(web.cfg, user.id, user.username),
                user.status)
    web.after_change()
    if user.role != "admin":
        return signup_page(200, done=True)       # no session: the same answer whether the name was free or not
    web.start_session(user)
    web.flash("Welcome! You are the administrator of this door.")
    redirect("/home", 303)


# -- login / logout -------------------------------------------------------------------------------------
def login_page(status=200, error="", username=""):
    web = current_web()
    store = web.store
    response.status = status
    return web.render("login.tpl", title="Log in", error=error, username=username,
                      first=not store.users())


def wait_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def too_many(what: str, seconds: float):
    """429 with when to try again, in words and as Retry-After."""
    raise HTTPError(429, f"{what}. Try again in {wait_words(seconds)}.",
                    headers={"Retry-After": str(int(math.ceil(seconds)))})


def locked_page(seconds: float):
    too_many("Too many failed logins", seconds)


@app.get("/login", access="public")
def login_form():
    home_if_logged_in()
    return login_page()


@app.post("/login", access="public")
def login():
    web = current_web()
    store = web.store
    name = form_value("username").strip()[:254]
    password = form_value("password")
    known = store.find_user(name) if name else None
    account_key = known.id if known else name.lower()
    addr_key = web.client_addr
    wait = web.throttle.wait(account_key, addr_key)
    if wait:
        locked_page(wait)
    user = store.check_password(name, password) if name and password else None   # slow: no lock held
    if user is None:
        wait = web.throttle.failure(account_key, addr_key)
        web.audit("login_failed", user=name[:64] or None, source=web.client_addr)
        logger.warning("web: failed login from %s", web.client_addr)
        if wait:
            locked_page(wait)
        return login_page(200, "Wrong username or password.", name)
    web.throttle.success(account_key, addr_key)   # (disabled accounts never get here: check_password refuses them)
    web.start_session(user)
    logger.info("web: %s logged in from %s", journal_name(web.cfg, user.id, user.username), web.client_addr)
    redirect("/home", 303)


@app.post("/logout", access="user")
def logout():
    web = current_web()
    web.end_session()
    redirect("/login", 303)


# -- own account ----------------------------------------------------------------------------------------
@app.post("/account/password", access="user")
def change_password():
    web = current_web()
    store = web.store
    user = web.user
    current, new, confirm = form_value("current"), form_value("password"), form_value("confirm")
    problem = password_problem(new, confirm)
    if not problem:
        # a stolen session must not become an unthrottled password oracle: same counters as the login
        wait = web.throttle.wait(user.id, web.client_addr)
        if wait:
            locked_page(wait)
        if store.check_password(user.username, current) is None:
            problem = "The current password is wrong."
            web.audit("login_failed", user=user.username, user_id=user.id, source=web.client_addr, action="password_change")
            if web.throttle.failure(user.id, web.client_addr):
                locked_page(web.throttle.wait(user.id, web.client_addr))
    if problem:
        raise HTTPError(400, problem)
    store.set_password(user.id, new)
    web.sessions.destroy_user(user.id)          # every other browser must log in again
    web.start_session(user)
    web.audit("user_changed", user=user.username, user_id=user.id, action="password_changed", admin=user.username)
    web.flash("Your password was changed.")
    redirect("/users", 303)


# -- dashboard ------------------------------------------------------------------------------------------
@app.get("/home", access="user")
def home():
    web = current_web()
    status = None
    me = web.user
    if me.status != "active":     # a pending or disabled account sees its own status, nothing of the door
        return web.render("home.tpl", title="Dashboard", status=None, events=[], format_time=format_time)
    if web.controller is not None:
        try:
            status = status_rows(web.controller.status(), viewer=me)
        except Exception:
            logger.exception("web: controller.status() failed")
            status = {"error": "the service did not answer"}
    owner = None if web.is_admin() else me
    events = recent_events(web.log, kinds=DECISIONS, owner=owner, limit=10)
    live, no_live = camera_state(web)
    health = None
    if web.is_admin() and web.controller is not None:
        health = health_cards(web.controller.health_series())
    return web.render("home.tpl", title="Dashboard", status=status, events=events, format_time=format_time,
                      live=live, no_live=no_live, health=health)


