"""Access log (paged and filtered through the log index, faces, CSV), settings, test recognition and remote unlock."""

from __future__ import annotations

import datetime as dt
import logging
import math
from urllib.parse import urlencode

import bottle
from bottle import HTTPError, request, response

from ..accesslog import EVENT_KINDS
from ..config import RUNTIME_SETTINGS, weakenings
from ..decision import door_policy
from ..errors import ImageError, SettingError
from ..lognames import journal_name
from ..store import StoreInputError
from .context import GuardPlugin, current_web
from .requests import form_value, redirect, uploaded_files
from .display import events_csv, format_similarity, format_time, mqtt_text, status_rows
from .faces import decode_upload, recognise

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
SETTINGS = RUNTIME_SETTINGS  # the settings page shows every run-time row of the one table in edge.config


def _date(text: str, label: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPError(400, f"{label}: use a date such as 2024-05-31.") from None


app = bottle.Bottle()
app.install(GuardPlugin())


# -- access log -----------------------------------------------------------------------------------------
def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time.min).astimezone().timestamp()


def log_query():
    """The matching events as positions in the access log index (newest first), and the filters shown.
    Only the lines a page shows are decrypted (:class:`edge.eventindex.EventIndex`)."""
    web = current_web()
    q = request.query
    user = q.getunicode("user", "") or ""
    owner = None
    if not web.is_admin():
        user, owner = "", web.user            # members see only their own events (by user id)
    result = q.getunicode("result", "") or ""
    if result and result not in EVENT_KINDS:
        raise HTTPError(400, "result: choose one of the listed kinds.")
    date_from = _date(q.getunicode("from", "") or "", "from")
    date_to = _date(q.getunicode("to", "") or "", "to")
    events = web.index.refresh()
    positions = events.select(kinds=(result,) if result else None, user=user or None, owner=owner,
                              since=_midnight(date_from) if date_from else None,
                              until=_midnight(date_to + dt.timedelta(days=1)) if date_to else None)[::-1]
    filters = {"user": user, "result": result, "from": q.getunicode("from", "") or "",
               "to": q.getunicode("to", "") or ""}
    return events, positions, filters


@app.get("/log", access="active")
def access_log():
    web = current_web()
    store = web.store
    events, positions, filters = log_query()
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    pages = max(1, math.ceil(len(positions) / PAGE_SIZE))
    page = min(page, pages)
    shown = web.index.read_events(events, positions[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
    query = urlencode({k: v for k, v in filters.items() if v})
    admin = web.is_admin()
    people = [(u.id, u.username) for u in store.users() if u.status == "active"] if admin else []
    return web.render("log.tpl", title="Access log", events=shown, filters=filters, page=page, pages=pages,
                      total=len(positions), query=query, kinds=EVENT_KINDS, faces=admin, people=people,
                      back=request.fullpath + ("?" + request.query_string if request.query_string else ""),
                      format_time=format_time, format_similarity=format_similarity,
                      users=[u.username for u in store.users()] if admin else [])


@app.get("/log.csv", access="active")
def access_log_csv():
    web = current_web()
    events, positions, _ = log_query()
    response.content_type = "text/csv; charset=utf-8"
    response.set_header("Content-Disposition", 'attachment; filename="access-log.csv"')
    return events_csv(web.index.read_events(events, positions))


# -- settings -------------------------------------------------------------------------------------------
def settings_page(values=None, errors=None, status=200, weaker=None):
    web = current_web()
    store = web.store
    response.status = status
    current = dict(store.settings)
    shown = {row.name: ("" if current.get(row.name) is None else current.get(row.name)) for row in SETTINGS}
    shown.update(values or {})
    return web.render("settings.tpl", title="Settings", fields=SETTINGS, values=shown, errors=errors or {},
                      model_threshold=web.engine.threshold if web.engine is not None else None,
                      mqtt_state=mqtt_state(web), liveness=web.cfg.liveness, weaker=weaker or [],
                      door=door_level(web) if web.engine is not None else None)


def mqtt_state(web) -> str:
    """The MQTT connection as the running service sees it (read-only: [mqtt] lives in the configuration file)."""
    if web.controller is None:
        return "unknown: the door service is not running"
    return mqtt_text(web.controller.status().mqtt)


def door_level(web) -> dict:
    """What the saved settings mean at the door today: its threshold, where it comes from, and the expected
    share of residents' single looks that reach it (the door averages several, so it grants more)."""
    gallery = web.store.gallery(web.engine.model_id)
    people = len(set(gallery.user_ids))
    policy, source = door_policy(web.cfg.decision, web.store.settings, security=web.engine.security,
                                 model_threshold=web.engine.threshold, people=people)
    security = web.engine.security
    share = security.granted_share(policy.threshold) if security is not None else None
    return {"threshold": policy.threshold, "source": source, "people": people, "granted": share}


@app.get("/settings", access="admin")
def settings():
    return settings_page()


@app.post("/settings", access="admin")
def save_settings():
    web = current_web()
    store = web.store
    raw = {row.name: form_value(row.name) for row in SETTINGS}
    values, errors = {}, {}
    for row in SETTINGS:
        try:
            values[row.name] = row.parse(raw[row.name], key=row.name)
        except SettingError as exc:
            errors[row.name] = exc.problem if exc.problem.startswith("Enter") else str(exc)
    weaker: list[str] = []
    if not errors:
        model_threshold = web.engine.threshold if web.engine is not None else None
        weaker = weakenings(values, model_threshold=model_threshold)
        already = weakenings(store.settings, model_threshold=model_threshold)
        if [w for w in weaker if w not in already] and form_value("confirm_weaker") != "yes":
            return settings_page(raw, {"form": "These settings make the door easier to open. Read why below and "
                                               "confirm, or change them."}, 400, weaker=weaker)
    if not errors:
        before = dict(store.settings)
        try:
            store.update_settings(**values)
        except StoreInputError as exc:
            errors[exc.field or "form"] = str(exc)
        else:
            changed = {k: v for k, v in values.items() if before.get(k) != v}
            if changed:
                extra = {"weakened": weaker} if weaker else {}
                web.audit("settings_changed", user=web.user.username, user_id=web.user.id,
                          admin=web.user.username, **changed, **extra)
                if weaker:
                    logger.warning("settings: %s confirmed settings that weaken the door: %s",
                                   journal_name(web.cfg, web.user.id, web.user.username), "; ".join(weaker))
                web.after_change()
            web.flash("Settings saved." if changed else "Nothing changed.")
            redirect("/settings", 303)
    return settings_page(raw, errors, 400)


# -- test recognition -----------------------------------------------------------------------------------
@app.get("/recognize", access="admin")
def recognise_form():
    web = current_web()
    return web.render("recognize.tpl", title="Test recognition", matches=None, threshold=None,
                      camera=web.controller is not None)


@app.post("/recognize", access="admin", heavy=True)
def recognise_run():
    web = current_web()
    if form_value("camera") == "1":
        if web.controller is None:
            raise HTTPError(503, "The door service is not running, so there is no camera frame.")
        frames = web.controller.capture_frames(1, 0.0)
        if not frames:
            raise HTTPError(503, "The camera has no picture right now.")
        image = frames[-1]
    else:
        files = uploaded_files("photo")
        if not files:
            raise HTTPError(400, "Choose a photograph to test.")
        try:
            image = decode_upload(files[0])
        except ImageError as exc:
            raise HTTPError(400, str(exc)) from None
    matches, threshold = recognise(web, image)
    return web.render("recognize.tpl", title="Test recognition", matches=matches, threshold=threshold,
                      camera=web.controller is not None, liveness=_liveness_note(web, form_value("camera") == "1"))


def _liveness_note(web, from_camera: bool) -> str:
    """What liveness says about the tested picture: the door's verdict for the face in view (camera), or why a
    single photograph cannot be judged."""
    mode = web.cfg.liveness.mode
    if mode == "off":
        return "Liveness check off: the door would also accept a photograph or a screen of this face."
    if from_camera and web.controller is not None:
        return f"Liveness ({status_rows(web.controller.status())['liveness']})."
    return (f"Liveness ({mode}) is judged over a few seconds of video at the door: a single photograph is never "
            "confirmed live, so this face would also have to blink, move or turn there.")


# -- remote unlock --------------------------------------------------------------------------------------
@app.get("/unlock", access="admin")
def unlock_confirm():
    web = current_web()
    return web.render("unlock.tpl", title="Remote unlock", done=False, available=web.controller is not None)


@app.post("/unlock", access="admin")
def unlock():
    web = current_web()
    if web.controller is None:
        raise HTTPError(503, "The door service is not running, so the door cannot be opened from here.")
    if form_value("confirm") != "yes":
        redirect("/unlock", 303)
    me, address = web.user, web.client_addr
    # the admin's password again: a session left open on a shared computer must not open the door
    wait = web.throttle.wait(me.id, address)
    if wait:
        raise HTTPError(429, f"Too many wrong passwords. Try again in {math.ceil(wait)} seconds.",
                        headers={"Retry-After": str(math.ceil(wait))})
    if web.store.check_password(me.username, form_value("password")) is None:
        web.throttle.failure(me.id, address)
        web.audit("login_failed", user=me.username, user_id=me.id, source=address, action="remote_unlock")
        response.status = 403
        return web.render("unlock.tpl", title="Remote unlock", done=False, available=True,
                          error="That is not your password; the door stays locked.")
    wait = web.unlock_limit.take(me.id)            # counts only unlocks that would happen
    if wait:
        raise HTTPError(429, f"The door was opened from here {web.unlock_limit.events} times in the last "
                             f"{web.unlock_limit.seconds / 60:g} minutes; try again in {math.ceil(wait)} seconds.",
                        headers={"Retry-After": str(math.ceil(wait))})
    web.controller.remote_unlock(me.username, admin_id=me.id, address=address)   # logged with name and address
    logger.info("web: remote unlock by %s from %s", journal_name(web.cfg, me.id, me.username), address)
    return web.render("unlock.tpl", title="Remote unlock", done=True, available=True)


