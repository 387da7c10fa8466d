"""Sign-up flooding (issue 11, item 6): a rate per address, a cap on pending accounts, invitation and closed
modes, and an administrator's session that a flood of logins cannot evict."""

from __future__ import annotations

import re

import pytest

from edge.web import create_app
from edge.web.sessions import SessionStore
from web_fixtures import PASSWORD, ROUNDS, client, csrf_of, form_for, login, make_backend


def make_site(tmp_path, **web):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS, **web)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    return cfg, store, create_app(cfg, store=store, log=log, engine=None)


def sign_up(c, username, invite=None, status="*"):
    form = form_for(c.get("/signup"), "/signup")
    form["username"], form["email"] = username, f"{username}@example.org"
    form["password"] = form["confirm"] = PASSWORD
    if invite is not None:
        form["invite"] = invite
    return form.submit(status=status)


def pending(store):
    return [u.username for u in store.users() if u.status == "pending"]


def test_one_address_creates_only_a_few_accounts_an_hour(tmp_path):
    cfg, store, app = make_site(tmp_path, signups_per_hour=3)
    c = client(app, "192.0.2.30")
    codes = [sign_up(c, f"flood{i}").status_int for i in range(8)]
    assert codes == [200, 200, 200] + [429] * 5
    assert len(pending(store)) == 3
    assert sign_up(client(app, "192.0.2.31"), "neighbour").status_int == 200


def test_sign_ups_pause_while_many_accounts_wait_for_approval(tmp_path):
    cfg, store, app = make_site(tmp_path, max_pending_accounts=4)
    answers = [sign_up(client(app, f"192.0.2.{40 + i}"), f"user{i}") for i in range(6)]
    assert [a.status_int for a in answers] == [200] * 4 + [400] * 2
    assert "paused" in answers[-1].text and len(pending(store)) == 4


def test_closed_sign_up_takes_no_accounts_except_the_very_first(tmp_path):
    cfg, store, app = make_site(tmp_path, signup="closed")
    c = client(app, "192.0.2.50")
    assert "not taken on this page" in c.get("/signup").text
    token = csrf_of(c.get("/login").text)
    c.post("/signup", {"username": "sneaky", "email": "s@x.org", "password": PASSWORD, "confirm": PASSWORD,
                       "csrf_token": token}, status=403)
    assert store.find_user("sneaky") is None
    empty_cfg, empty_store, log = make_backend(tmp_path / "new", bcrypt_rounds=ROUNDS, signup="closed")
    fresh = client(create_app(empty_cfg, store=empty_store, log=log, engine=None))
    sign_up(fresh, "owner", status=303)
    assert empty_store.find_user("owner").role == "admin"


def test_invitation_codes_work_once(tmp_path):
    cfg, store, app = make_site(tmp_path, signup="invite")
    guest = client(app, "192.0.2.60")
    page = sign_up(guest, "guest", invite="made-up-code", status=400)
    assert "invitation code is not valid" in page.text and store.find_user("guest") is None
    admin = client(app, "192.0.2.61")
    login(admin, "root")
    users = admin.get("/users")
    made = admin.post("/invites", {"csrf_token": csrf_of(users.text)}, status=200)
    code = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)
    assert sign_up(guest, "guest", invite=code).status_int == 200 and store.find_user("guest") is not None
    page = sign_up(client(app, "192.0.2.62"), "second", invite=code, status=400)
    assert "not valid" in page.text and store.find_user("second") is None
    assert code not in str(store.path.read_bytes())


def test_a_flood_of_logins_cannot_evict_the_administrators_session():
    sessions = SessionStore(idle_seconds=600, absolute_seconds=3600, max_sessions=50, per_user=5)
    admin = sessions.create("admin-id", privileged=True)
    for i in range(500):
        sessions.create(f"member-{i % 7}")
    assert sessions.get(admin.token) is not None
    assert len(sessions) <= 50
    mine = [sessions.create("member-0") for _ in range(8)]
    assert sum(sessions.get(s.token) is not None for s in mine) == 5          # at most per_user each
