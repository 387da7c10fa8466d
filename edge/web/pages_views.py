"""What the door sees: the live view (MJPEG), the faces of logged decisions, "enrol as" from a face, and the
charts page.

A missing camera or daemon is a state, not an error: the live view answers with a picture that says so (never
a broken image, never an ERROR line in the log).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import bottle
from bottle import HTTPError, HTTPResponse, request, response

from ..decision import Policy, door_policy
from ..eventfaces import valid_name
from ..liveview import CONTENT_TYPE, placeholder_jpeg
from .charts import DEFAULT_PERIOD, PERIODS, chart_page, name_people
from .context import GuardPlugin, current_web
from .display import camera_state
from .faces import enrol_images
from .requests import form_value, redirect

logger = logging.getLogger(__name__)

app = bottle.Bottle()
app.install(GuardPlugin())


def _jpeg(data: bytes) -> HTTPResponse:
    return HTTPResponse(body=data, status=200, headers={"Content-Type": "image/jpeg"})


# -- live view ------------------------------------------------------------------------------------------
@app.get("/live.mjpg", access="active")
def live():
    """The live view as MJPEG; a still picture when the stream cannot run (no camera, too many viewers)."""
    web = current_web()
    available, why = camera_state(web)
    if not available:
        return _jpeg(placeholder_jpeg(why))
    session = web.session                           # one stream per browser: a reload ends the previous one
    stream = web.controller.live_stream(("session", session.user_id, session.created) if session else None)
    if stream is None:                              # the most viewers allowed are watching: one still picture
        return _jpeg(web.controller.snapshot_jpeg() or placeholder_jpeg("No picture from the camera"))
    response.content_type = CONTENT_TYPE
    return stream


@app.get("/snapshot.jpg", access="active")
def snapshot():
    web = current_web()
    available, why = camera_state(web)
    data = web.controller.snapshot_jpeg() if available else None
    return _jpeg(data or placeholder_jpeg(why or "No picture from the camera"))


# -- faces of decisions ---------------------------------------------------------------------------------
@app.get("/faces/<day:re:[0-9]{8}>/<stem:re:[0-9-]{13,24}>.jpg", access="admin")
def face(day, stem):
    data = current_web().faces.read(f"{day}/{stem}")
    if data is None:
        raise HTTPError(404, "That face is no longer kept (its retention has passed).")
    return _jpeg(data)


@app.post("/faces/enrol", access="admin", heavy=True)
def enrol_face():
    """An unknown face from the log becomes a template of the chosen user (the log's "Enrol as" form)."""
    web = current_web()
    name, user_id = form_value("photo"), form_value("user")
    if not valid_name(name):
        raise HTTPError(400, "That is not the name of a kept face.")
    user = web.store.get_user(user_id) if user_id else None
    if user is None:
        raise HTTPError(400, "Choose the person this face belongs to.")
    image = web.faces.image(name)
    if image is None:
        raise HTTPError(404, "That face is no longer kept (its retention has passed).")
    if web.engine is None:
        raise HTTPError(503, "Face recognition is not loaded, so nothing can be enrolled here.")
    verdict = enrol_images(web, user, [("the face at the door", image)], "camera")[0]
    if not verdict.ok:
        raise HTTPError(400, f"The face was not enrolled: {'; '.join(verdict.reasons)}")
    web.audit("enrol", user=user.username, user_id=user.id, source="door", admin=web.user.username, templates=1,
              photo=name)
    web.after_change()
    web.flash(f"The face is now a template of {user.username}.")
    redirect(_back())


def _back() -> str:
    back = form_value("back")
    return back if back.startswith("/log") and "//" not in back and "\\" not in back else "/log"


# -- charts ---------------------------------------------------------------------------------------------
def _number(name: str, default: float, lo: float, hi: float) -> float:
    text = request.query.getunicode(name, "") or ""
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise HTTPError(400, f"{name}: enter a number such as {default:g}.") from None
    if not lo <= value <= hi:
        raise HTTPError(400, f"{name}: enter a number from {lo:g} to {hi:g}.")
    return value


@app.get("/charts", access="admin")
def charts():
    web = current_web()
    try:
        days = int(request.query.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    if days not in PERIODS:
        days = DEFAULT_PERIOD
    if web.engine is not None:     # the door's threshold: its security level for the people enrolled now
        people = len(set(web.store.gallery(web.engine.model_id).user_ids))
        policy, _source = door_policy(web.cfg.decision, web.store.settings, security=web.engine.security,
                                      model_threshold=web.engine.threshold, people=people)
    else:
        policy = Policy.from_settings(web.cfg.decision, web.store.settings, model_threshold=0.8)
    what_if = round(_number("threshold", round(policy.threshold - 0.05, 2), -1.0, 1.0), 3)
    events = web.index.refresh()
    page = chart_page(events, now=time.time(), days=days, threshold=policy.threshold, margin=policy.margin,
                      what_if_threshold=what_if)
    page = replace(page, users=name_people(page.users, {u.id: u.username for u in web.store.users()}))
    return web.render("charts.tpl", title="Charts", page=page, days=days, periods=PERIODS, policy=policy,
                      what_if=what_if)
