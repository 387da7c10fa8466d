"""Users (admin: approve, disable, enable, delete, reset password, make admin; members see themselves) and
enrolment from uploaded photographs or the camera."""

from __future__ import annotations

import base64
import logging
import secrets

import bottle
from bottle import HTTPError, response

from ..errors import EdgeError
from .context import GuardPlugin, current_web
from .requests import form_value, redirect, uploaded_files
from .faces import MAX_PHOTOS, Verdict, enrol_camera_frames, enrol_uploads

logger = logging.getLogger(__name__)

CAMERA_FRAMES = 15       # over CAMERA_SECONDS while the person turns their head a little ...
CAMERA_SECONDS = 3.0
CAMERA_KEEP = 4          # ... of which the most different good frames become templates


app = bottle.Bottle()
app.install(GuardPlugin())


def target(user_id: str):
    web = current_web()
    store = web.store
    user = store.get_user(user_id)
    if user is None:
        raise HTTPError(404, "There is no such user.")
    return user


@app.get("/users", access="user")
def users():
    web = current_web()
    store = web.store
    listed = store.users() if web.is_admin() else [web.user]
    return web.render("users.tpl", title="Users" if web.is_admin() else "My account", users=listed,
                      template_counts={u.id: len(u.templates) for u in listed}, pending=pending_review(),
                      new_password=None, user_actions=user_actions)


@app.post("/users/<user_id>/<action:re:approve|disable|enable|make-admin|make-member>", access="admin")
def change(user_id, action):
    web = current_web()
    store = web.store
    user, admin = target(user_id), web.user
    if action in ("disable", "make-member") and user.id == admin.id:
        raise HTTPError(400, "You cannot disable or demote yourself; ask another administrator.")
    # The last-admin rule is the store's, checked inside its write transaction (StoreInputError -> 400).
    if action in ("make-admin", "make-member"):
        store.set_role(user.id, action.removeprefix("make-"))
    else:
        store.update_user(user.id, status="disabled" if action == "disable" else "active")
    if action == "disable":
        web.sessions.destroy_user(user.id)
    web.audit("user_changed", user=user.username, user_id=user.id, action=action, admin=admin.username)
    web.after_change()
    web.flash(f"{user.username}: {action.replace('-', ' ')} done.")
    redirect("/users", 303)


@app.post("/users/<user_id>/reset-password", access="admin")
def reset_password(user_id):
    web = current_web()
    store = web.store
    user = target(user_id)
    password = secrets.token_urlsafe(9)            # shown once to the admin, never logged
    store.set_password(user.id, password)
    web.sessions.destroy_user(user.id)
    web.audit("user_changed", user=user.username, user_id=user.id, action="reset_password", admin=web.user.username)
    listed = store.users()
    return web.render("users.tpl", title="Users", users=listed,
                      template_counts={u.id: len(u.templates) for u in listed}, pending=pending_review(),
                      new_password=(user.username, password), user_actions=user_actions)


@app.get("/users/<user_id>/delete", access="admin")
def delete_confirm(user_id):
    web = current_web()
    return web.render("confirm_delete.tpl", title="Delete user", target=target(user_id))


@app.post("/users/<user_id>/delete", access="admin")
def delete(user_id):
    web = current_web()
    store = web.store
    user = target(user_id)
    if user.id == web.user.id:
        raise HTTPError(400, "You cannot delete yourself; ask another administrator.")
    if form_value("confirm") != "yes":
        redirect("/users", 303)
    store.remove_user(user.id)
    web.sessions.destroy_user(user.id)
    web.audit("user_changed", user=user.username, user_id=user.id, action="delete", admin=web.user.username)
    web.after_change()
    web.flash(f"{user.username} was deleted with their face templates.")
    redirect("/users", 303)


# -- enrolment ------------------------------------------------------------------------------------------
def pending_review() -> list[tuple]:
    """(user, template, thumbnail data URI) of the templates waiting for approval; admins only."""
    web = current_web()
    if not web.is_admin():
        return []
    return [(u, t, "data:image/jpeg;base64," + base64.b64encode(t.thumbnail).decode("ascii") if t.thumbnail
             else "") for u, t in web.store.pending_templates()]


@app.post("/invites", access="admin")
def make_invite():
    """A single-use invitation code for ``[web] signup = "invite"``, shown once to the administrator."""
    web = current_web()
    store = web.store
    code = store.create_invite(web.user.id)
    web.audit("user_changed", user=web.user.username, user_id=web.user.id, action="invite_created")
    listed = store.users()
    return web.render("users.tpl", title="Users", users=listed,
                      template_counts={u.id: len(u.templates) for u in listed}, pending=pending_review(),
                      new_password=None, invite=code, user_actions=user_actions)


@app.post("/templates/<template_id>/<action:re:approve|reject>", access="admin")
def review_template(template_id, action):
    """An administrator approves a pending face template (the door uses it from now on) or rejects it."""
    web = current_web()
    store = web.store
    found = [(u, t) for u, t in store.pending_templates() if t.id == template_id]
    if not found:
        raise HTTPError(404, "There is no such face template waiting for approval.")
    user, _template = found[0]
    if action == "approve":
        store.approve_template(template_id)
    else:
        store.remove_template(template_id)
    web.audit("enrol", user=user.username, user_id=user.id, action=f"template_{action}d", template=template_id,
              admin=web.user.username)
    web.after_change()
    web.flash(f"{user.username}: face template {action}d.")
    redirect("/users", 303)


def enrol_target(user_id: str):
    web = current_web()
    user = target(user_id)
    if not web.is_admin() and user.id != web.user.id:
        raise HTTPError(403, "You can enrol only yourself.")
    return user


def results(user, verdicts: list[Verdict], source: str, status: int = 200, advice: str | None = None):
    web = current_web()
    store = web.store
    response.status = status
    stored = sum(v.ok for v in verdicts)
    if stored:
        web.audit("enrol", user=user.username, user_id=user.id, source=source, admin=web.user.username,
                  templates=stored)
        web.after_change()
    return web.render("enrol.tpl", title=f"Enrol {user.username}", target=user, verdicts=verdicts,
                      stored=stored, count=len((store.get_user(user.id) or user).templates),
                      camera=web.controller is not None, advice=advice)


@app.get("/users/<user_id>/enrol", access="active")
def enrol_form(user_id):
    web = current_web()
    user = enrol_target(user_id)
    return web.render("enrol.tpl", title=f"Enrol {user.username}", target=user, verdicts=None, stored=0,
                      count=len(user.templates), camera=web.controller is not None)


@app.post("/users/<user_id>/enrol", access="active", heavy=True)
def enrol_upload(user_id):
    web = current_web()
    user = enrol_target(user_id)
    files = uploaded_files("photos")
    if not files:
        raise HTTPError(400, "Choose one or more photographs to upload.")
    if len(files) > MAX_PHOTOS:
        raise HTTPError(400, f"Upload at most {MAX_PHOTOS} photographs at a time.")
    verdicts = enrol_uploads(web, user, files, "upload")      # one decoded photograph in memory at a time
    return results(user, verdicts, "upload", 200 if any(v.decoded for v in verdicts) else 400)


@app.post("/users/<user_id>/enrol/camera", access="active", heavy=True)
def enrol_camera(user_id):
    web = current_web()
    user = enrol_target(user_id)
    if web.controller is None:
        raise HTTPError(503, "The door service is not running, so the camera cannot be used.")
    try:          # the door's LEDs ask for a slow head turn meanwhile (back to normal on every way out)
        frames = web.controller.capture_enrolment_frames(CAMERA_FRAMES, CAMERA_SECONDS)
    except EdgeError as exc:
        raise HTTPError(503, f"The camera did not deliver frames: {exc}") from None
    if not frames:
        raise HTTPError(503, "The camera did not deliver any frame; check it on the dashboard.")
    named = [(f"camera frame {i + 1}", frame) for i, frame in enumerate(frames)]
    verdicts, advice = enrol_camera_frames(web, user, named, CAMERA_KEEP)
    return results(user, verdicts, "camera", advice=advice)


def user_actions(u, me) -> list[tuple[str, str]]:
    """The buttons an administrator gets for user ``u`` (``me`` is the administrator)."""
    actions = []
    if u.status == "pending":
        actions.append(("approve", "Approve"))
    if u.status == "active" and u.id != me.id:
        actions.append(("disable", "Disable"))
    if u.status == "disabled":
        actions.append(("enable", "Enable"))
    if u.role != "admin":
        actions.append(("make-admin", "Make admin"))
    elif u.id != me.id:
        actions.append(("make-member", "Make member"))
    actions.append(("reset-password", "Reset password"))
    return actions
