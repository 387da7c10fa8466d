"""Every route of the admin page, for every role, and every rejection, through WebTest (WSGI, no sockets).

The database and access log are real (encrypted files in tmp_path, bcrypt at a low cost for speed: the cost is
the store's business, and the real-server tests keep the default). Face pages use the real model on real
photographs. The security-critical paths are tested again over a real server in test_web_server.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from webtest import TestApp

from edge.web import create_app
from web_fixtures import (PASSWORD, ROUNDS, client, csrf_of, door_site, form_for, login, make_backend,
                          reopen_store)

HTTPS = {"wsgi.url_scheme": "https", "REMOTE_ADDR": "192.0.2.10"}
SECURITY = {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options"}


def post(c: TestApp, url, fields=None, status=303, page="/home", **kw):
    token = csrf_of(c.get(page).text)
    return c.post(url, dict(fields or {}, csrf_token=token), status=status, **kw)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One app with an admin (alice), an active member (carol) and a pending member (bob), each logged in."""
    cfg, store, log = make_backend(tmp_path_factory.mktemp("state"), bcrypt_rounds=ROUNDS)
    alice = store.add_user(username="alice", email="alice@example.org", password=PASSWORD, role="admin",
                           status="active")
    carol = store.add_user(username="carol", email="carol@example.org", password=PASSWORD, status="active")
    bob = store.add_user(username="bob", email="bob@example.org", password=PASSWORD)
    app = create_app(cfg, store=store, log=log, engine=None)
    clients = {}
    for name, addr in (("alice", "192.0.2.1"), ("carol", "192.0.2.2"), ("bob", "192.0.2.3")):
        clients[name] = client(app, addr)
        login(clients[name], name)

    class Site:
        pass
    s = Site()
    s.cfg, s.store, s.log, s.app, s.clients = cfg, store, log, app, clients
    s.ids = {"alice": alice.id, "carol": carol.id, "bob": bob.id}
    return s


def events(log, kind=None):
    return list(log.events(kind=kind))


# -- signup -----------------------------------------------------------------------------------------------
def test_first_signup_is_the_active_admin_and_later_ones_are_pending(tmp_path):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS)
    app = create_app(cfg, store=store, log=log, engine=None)
    first, second = client(app), client(app, "192.0.2.99")
    page = first.get("/signup")
    assert "first account" in page.text
    form = form_for(page, "/signup")
    form["username"], form["email"], form["password"], form["confirm"] = "Admin", "a@x.org", PASSWORD, PASSWORD
    home = form.submit(status=303).follow()
    assert "administrator" in home.text and "Log out Admin" in home.text
    form = form_for(second.get("/signup"), "/signup")
    form["username"], form["email"], form["password"], form["confirm"] = "member", "m@x.org", PASSWORD, PASSWORD
    assert "account now waits" in form.submit(status=200).text
    home = login(second, "member").follow()
    assert "waiting for approval" in home.text
    on_disk = {u.username: (u.role, u.status) for u in reopen_store(store).users()}
    assert on_disk == {"Admin": ("admin", "active"), "member": ("member", "pending")}
    assert [e["user"] for e in events(log, "user_changed")] == ["Admin", "member"]
    second.get("/users/%s/enrol" % store.find_user("member").id, status=403)


def test_signup_answers_do_not_reveal_existing_usernames_or_emails(site):
    """Issue 11, item 8: "This username is taken" told a stranger who has an account."""
    answers = []
    for i, (username, email) in enumerate((("ALICE", "new@example.org"), ("newname", "Carol@Example.ORG"),
                                           ("brandnew", "brandnew@example.org"))):
        c = client(site.app, f"192.0.2.{150 + i}")
        form = form_for(c.get("/signup"), "/signup")
        form["username"], form["email"], form["password"], form["confirm"] = username, email, PASSWORD, PASSWORD
        page = form.submit(status=200)
        answers.append(page.html.select_one("main").text if page.html.select_one("main") else page.text)
        assert PASSWORD not in page.text
        assert "is taken" not in page.text and "already exists" not in page.text and "belongs" not in page.text
    assert answers[0] == answers[1] == answers[2]
    assert site.store.find_user("brandnew").status == "pending" and site.store.find_user("newname") is None
    site.store.remove_user(site.store.find_user("brandnew").id)


@pytest.mark.parametrize("fields, message", [
    ({"username": "x", "email": "x@y.org"}, "3 to 32"),
    ({"username": "xavier", "email": "not-an-address"}, "e-mail address"),
    ({"username": "xavier", "email": "x@y.org", "password": "short", "confirm": "short"}, "at least 8"),
    ({"username": "xavier", "email": "x@y.org", "confirm": "different password"}, "passwords differ"),
])
def test_signup_validation_messages(site, fields, message):
    c = client(site.app, "192.0.2.51")
    form = form_for(c.get("/signup"), "/signup")
    values = {"password": PASSWORD, "confirm": PASSWORD, **fields}
    for key, value in values.items():
        form[key] = value
    assert message in form.submit(status=400).text
    assert site.store.find_user("xavier") is None


def test_xss_in_form_fields_is_shown_escaped(site):
    c = client(site.app, "192.0.2.52")
    payload = '<script>alert("x")</script>'
    form = form_for(c.get("/signup"), "/signup")
    form["username"], form["email"], form["password"], form["confirm"] = payload, payload, PASSWORD, PASSWORD
    page = form.submit(status=400)
    assert payload not in page.text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    # a name that reached the database another way (the CLI) is escaped on the users page too
    evil = site.store.add_user(username='<img src=x onerror=alert(1)>', email="evil@example.org")
    try:
        page = site.clients["alice"].get("/users")
        assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    finally:
        site.store.remove_user(evil.id)


# -- login, sessions, CSRF --------------------------------------------------------------------------------
def test_wrong_password_is_refused_and_logged_without_the_password(site):
    c = client(site.app, "192.0.2.60")
    page = login(c, "carol", "wrong password 123", status=200)
    assert "Wrong username or password" in page.text
    assert c.get("/home", status=303).location.endswith("/login")
    failed = events(site.log, "login_failed")[-1]
    assert failed["user"] == "carol" and failed["source"] == "192.0.2.60"
    assert "wrong password 123" not in json.dumps(events(site.log))


def test_x_forwarded_for_does_not_change_the_throttled_address(site):
    c = client(site.app, "192.0.2.61")
    c.extra_environ["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    login(c, "nobody-here", "wrong password", status=200)
    assert events(site.log, "login_failed")[-1]["source"] == "192.0.2.61"


def test_login_throttle_answers_429_with_a_clear_page(tmp_path):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS, login_max_failures=3)
    store.add_user(username="dave", email="d@x.org", password=PASSWORD, status="active")
    app = create_app(cfg, store=store, log=log, engine=None)
    c = client(app)
    login(c, "dave", "nope nope 1", status=200)
    login(c, "dave", "nope nope 2", status=200)
    page = login(c, "dave", "nope nope 3", status=429)
    assert "Too many failed logins" in page.text and int(page.headers["Retry-After"]) > 0
    login(c, "dave", PASSWORD, status=429)                        # even the right password waits, from here
    login(client(app, "192.0.2.200"), "d@x.org", PASSWORD, status=303)   # dave, by e-mail, from home
    assert len(events(log, "login_failed")) == 3


def test_wrong_current_passwords_on_the_password_page_count_like_failed_logins(tmp_path):
    """A stolen session must not become an unthrottled way to guess the account's password."""
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS, login_max_failures=3)
    store.add_user(username="dave", email="d@x.org", password=PASSWORD, status="active")
    app = create_app(cfg, store=store, log=log, engine=None)
    c = client(app, "192.0.2.90")
    login(c, "dave", PASSWORD)
    token = csrf_of(c.get("/home").text)
    new = "a fresh passphrase 42"
    codes = [c.post("/account/password", {"current": f"guess number {i}", "password": new, "confirm": new,
                                          "csrf_token": token}, expect_errors=True).status_int for i in range(4)]
    assert codes == [400, 400, 429, 429]
    assert len(events(log, "login_failed")) == 3
    assert store.check_password("dave", PASSWORD) is not None


def test_anonymous_requests_are_sent_to_login(site):
    c = client(site.app, "192.0.2.70")
    uid = site.ids["carol"]
    for url in ("/home", "/users", f"/users/{uid}/enrol", "/log", "/log.csv", "/settings", "/recognize",
                "/unlock", "/snapshot.jpg", "/live.mjpg", "/charts", "/faces/20250101/120000-000000.jpg",
                f"/users/{uid}/delete"):
        assert c.get(url, status=303).location.endswith("/login"), url
    for url in ("/settings", "/unlock", f"/users/{uid}/disable", "/logout", f"/users/{uid}/enrol", "/faces/enrol"):
        assert c.post(url, {"x": "1"}, status=303).location.endswith("/login"), url
    assert c.get("/", status=303).location.endswith("/login")


def test_forms_without_a_valid_csrf_token_get_403(site):
    admin = site.clients["alice"]
    before = site.store.revision
    admin.post("/settings", {"unlock_seconds": "4"}, status=403)
    admin.post("/settings", {"unlock_seconds": "4", "csrf_token": "forged"}, status=403)
    other_token = csrf_of(site.clients["carol"].get("/home").text)     # another user's token
    admin.post(f"/users/{site.ids['bob']}/approve", {"csrf_token": other_token}, status=403)
    page = client(site.app, "192.0.2.71").post("/login", {"username": "alice", "password": PASSWORD},
                                               status=403)
    assert "Reload the page" in page.text
    assert site.store.revision == before


def test_logout_ends_the_session_on_the_server(site):
    c = client(site.app, "192.0.2.72")
    login(c, "carol")
    cookie = c.cookies["__Host-edge_session"]
    post(c, "/logout").follow(status=200)
    c.set_cookie("__Host-edge_session", cookie)                   # replaying the old cookie does not work
    assert c.get("/home", status=303).location.endswith("/login")


def test_session_cookie_flags_and_rotation(site):
    c = client(site.app, "192.0.2.73")
    res = login(c, "carol")
    cookie = [v for k, v in res.headerlist if k == "Set-Cookie" and v.startswith("__Host-edge_session=")][0]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=strict" in cookie.lower()
    first = c.cookies["__Host-edge_session"]
    post(c, "/login", {"username": "carol", "password": PASSWORD})     # logging in again, same browser
    assert c.cookies["__Host-edge_session"] != first
    c2 = client(site.app, "192.0.2.74")
    c2.set_cookie("__Host-edge_session", first)
    c2.get("/home", status=303)                                      # the previous token died at re-login


# -- roles ------------------------------------------------------------------------------------------------
def test_members_get_403_on_admin_routes(site):
    member = site.clients["carol"]
    before = site.store.revision
    for url in ("/settings", "/recognize", "/unlock", f"/users/{site.ids['bob']}/delete"):
        assert "administrators only" in member.get(url, status=403).text
    for url in ("/settings", "/unlock", f"/users/{site.ids['bob']}/approve",
                f"/users/{site.ids['carol']}/make-admin", f"/users/{site.ids['bob']}/reset-password",
                f"/users/{site.ids['alice']}/delete", "/recognize"):
        post(member, url, {"confirm": "yes", "unlock_seconds": "9"}, status=403)
    post(member, f"/users/{site.ids['alice']}/enrol", status=403)
    assert site.store.revision == before
    assert site.store.get_user(site.ids["carol"]).role == "member"


def test_a_member_sees_only_themself(site):
    page = site.clients["carol"].get("/users")
    assert "carol@example.org" in page.text
    assert "alice@example.org" not in page.text and "bob@example.org" not in page.text
    log_page = site.clients["carol"].get("/log?user=alice")
    assert 'name="user"' not in log_page.text                    # no user filter for members


def test_a_pending_member_cannot_enrol_or_see_the_camera(site):
    bob = site.clients["bob"]
    assert "waiting for approval" in bob.get("/home").text
    for url in (f"/users/{site.ids['bob']}/enrol", "/log", "/snapshot.jpg", "/live.mjpg"):
        assert "waiting for approval" in bob.get(url, status=403).text
    post(bob, f"/users/{site.ids['bob']}/enrol", status=403)


def test_unknown_routes_get_the_site_404_page_with_security_headers(site):
    for c in (site.clients["alice"], client(site.app, "192.0.2.75")):
        page = c.get("/no/such/page", status=404)
        assert "There is no such page" in page.text and '<link rel="stylesheet" href="/static/style.css">' in page.text
        assert SECURITY <= set(page.headers)
    page = site.clients["alice"].get("/no/<b>such</b>", status=404)
    assert "<b>such" not in page.text


def test_security_headers_on_every_kind_of_response(site):
    c = site.clients["alice"]
    responses = [c.get("/home"), c.get("/static/style.css"), site.clients["carol"].get("/settings", status=403),
                 client(site.app, "192.0.2.76").get("/login"), c.get("/home").click(href="/log")]
    for res in responses:
        assert res.headers["Content-Security-Policy"].startswith("default-src 'self'; img-src 'self' data:")
        assert res.headers["X-Frame-Options"] == "DENY"
        assert res.headers["Referrer-Policy"] == "no-referrer"
        assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert responses[0].headers["Cache-Control"] == "no-store"


def test_viewport_meta_and_no_scripts(site):
    page = site.clients["alice"].get("/home")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert "<script" not in page.text


# -- user administration ----------------------------------------------------------------------------------
def test_admin_approves_disables_enables_and_promotes(site):
    store, admin = site.store, site.clients["alice"]
    erin = store.add_user(username="erin", email="erin@example.org", password=PASSWORD)
    erin_client = client(site.app, "192.0.2.80")
    login(erin_client, "erin")
    post(admin, f"/users/{erin.id}/approve", page="/users")
    assert reopen_store(store).get_user(erin.id).status == "active"
    assert erin_client.get(f"/users/{erin.id}/enrol").status_int == 200
    post(admin, f"/users/{erin.id}/disable", page="/users")
    assert reopen_store(store).get_user(erin.id).status == "disabled"
    assert erin_client.get("/home", status=303).location.endswith("/login")   # session ended at once
    login(erin_client, "erin", status=200)
    post(admin, f"/users/{erin.id}/enable", page="/users")
    post(admin, f"/users/{erin.id}/make-admin", page="/users")
    assert (store.get_user(erin.id).role, store.get_user(erin.id).status) == ("admin", "active")
    actions = [(e["user"], e["action"], e["admin"]) for e in events(site.log, "user_changed")
               if e["user"] == "erin"]
    assert actions == [("erin", a, "alice") for a in ("approve", "disable", "enable", "make-admin")]
    post(admin, f"/users/{erin.id}/delete", {"confirm": "yes"}, page=f"/users/{erin.id}/delete")
    assert reopen_store(store).get_user(erin.id) is None


def test_admin_cannot_lock_out_administration(site):
    admin = site.clients["alice"]
    uid = site.ids["alice"]
    for action in ("disable", "make-member"):
        assert "yourself" in post(admin, f"/users/{uid}/{action}", status=400, page="/users").text
    assert "delete yourself" in post(admin, f"/users/{uid}/delete", {"confirm": "yes"}, status=400).text
    assert site.store.get_user(uid).status == "active" and site.store.get_user(uid).role == "admin"


def test_reset_password_shows_a_new_password_once_and_ends_sessions(site):
    store, admin = site.store, site.clients["alice"]
    frank = store.add_user(username="frank", email="frank@example.org", password=PASSWORD, status="active")
    frank_client = client(site.app, "192.0.2.81")
    login(frank_client, "frank")
    page = post(admin, f"/users/{frank.id}/reset-password", status=200, page="/users")
    new_password = page.html.select_one("code.secret").text
    assert len(new_password) >= 10
    assert store.check_password("frank", PASSWORD) is None and store.check_password("frank", new_password)
    assert frank_client.get("/home", status=303)
    assert new_password not in json.dumps(events(site.log))
    assert new_password not in admin.get("/users").text                # shown once only
    store.remove_user(frank.id)


def test_delete_needs_confirmation_and_unknown_users_are_404(site):
    store, admin = site.store, site.clients["alice"]
    gina = store.add_user(username="gina", email="gina@example.org")
    assert "cannot be undone" in admin.get(f"/users/{gina.id}/delete").text
    post(admin, f"/users/{gina.id}/delete", page="/users")                   # no confirm: nothing happens
    assert store.get_user(gina.id) is not None
    post(admin, f"/users/{gina.id}/delete", {"confirm": "yes"}, page="/users")
    assert store.get_user(gina.id) is None
    post(admin, "/users/nosuchid/approve", status=404, page="/users")
    post(admin, "/users/nosuchid/frobnicate", status=404, page="/users")


def test_change_own_password(site):
    store = site.store
    hank = store.add_user(username="hank", email="hank@example.org", password=PASSWORD, status="active")
    c = client(site.app, "192.0.2.82")
    login(c, "hank")
    new = "a much better passphrase"
    page = post(c, "/account/password", {"current": "wrong one!!", "password": new, "confirm": new},
                status=400, page="/users")
    assert "current password is wrong" in page.text
    post(c, "/account/password", {"current": PASSWORD, "password": new, "confirm": new}, page="/users")
    assert store.check_password("hank", new) is not None
    assert c.get("/users").status_int == 200                          # still logged in, new token
    store.remove_user(hank.id)


# -- settings ---------------------------------------------------------------------------------------------
def test_settings_are_validated_and_saved(site):
    admin = site.clients["alice"]
    page = admin.get("/settings")
    assert "passive" in page.html.select_one(".liveness-mode").text   # the liveness check, from the file
    assert "none fitted" in page.html.select_one(".liveness-illuminator").text   # [liveness] illuminator_pin
    form = form_for(page, "/settings")
    form["threshold"], form["unlock_seconds"] = "0.81", "4.5"
    form.submit(status=303)
    on_disk = reopen_store(site.store).settings
    assert on_disk["threshold"] == pytest.approx(0.81) and on_disk["unlock_seconds"] == 4.5
    changed = events(site.log, "settings_changed")[-1]
    assert changed["admin"] == "alice" and changed["unlock_seconds"] == 4.5

    form = form_for(admin.get("/settings"), "/settings")
    form["unlock_seconds"], form["frames_required"] = "lots", "2.5"
    page = form.submit(status=400)
    assert page.html.select('input[name="unlock_seconds"][aria-invalid="true"]')
    assert "Enter a number" in page.text and "Enter a whole number" in page.text
    assert form_for(page, "/settings")["unlock_seconds"].value == "lots"      # what was typed stays

    form = form_for(admin.get("/settings"), "/settings")
    form["frames_required"], form["frames_considered"] = "9", "3"
    page = form.submit(status=400)
    field_error = page.html.select_one('input[name="frames_required"]').find_parent("label").find_next_sibling()
    assert "must not exceed frames_considered" in field_error.text
    form = form_for(admin.get("/settings"), "/settings")
    form["unlock_seconds"] = "99"
    page = form.submit(status=400)
    field_error = page.html.select_one('input[name="unlock_seconds"]').find_parent("label").find_next_sibling()
    assert "unlock_seconds: must be between" in field_error.text
    form = form_for(admin.get("/settings"), "/settings")
    form["threshold"] = ""
    form.submit(status=303)
    assert site.store.settings["threshold"] is None
    assert site.store.settings["unlock_seconds"] == 4.5


# -- access log -------------------------------------------------------------------------------------------
def test_access_log_filters_pages_and_exports_csv_safely(tmp_path):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    store.add_user(username="mia", email="m@x.org", password=PASSWORD, status="active")
    for i in range(60):
        log.append("grant", user="mia", similarity=0.9, decision="grant", source="camera")
    log.append("deny", user="=HYPERLINK(\"http://evil\")", similarity=-0.1, source="camera")
    log.append("unknown", similarity=0.2, source="camera")
    app = create_app(cfg, store=store, log=log, engine=None)
    admin, mia = client(app), client(app, "192.0.2.5")
    login(admin, "root")
    login(mia, "mia")
    page = admin.get("/log")
    assert "62 events, page 1 of 2" in page.text and page.text.count('<tr class="grant">') == 48
    assert admin.get("/log?page=2").text.count('<tr class="grant">') == 12
    assert "1 event," in admin.get("/log?result=deny").text
    assert "60 events" in admin.get("/log?user=mia&result=grant").text
    today = dt.date.today().isoformat()
    assert "62 events" in admin.get(f"/log?from={today}&to={today}").text
    assert "0 events" in admin.get("/log?from=2001-01-01&to=2001-01-02").text
    assert "use a date" in admin.get("/log?from=yesterday", status=400).text
    admin.get("/log?result=bogus", status=400)
    assert "60 events" in mia.get("/log?user=root").text              # members: own events only

    res = admin.get("/log.csv")
    assert res.content_type == "text/csv" and "attachment" in res.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(res.text)))
    assert len(rows) == 63 and rows[0][1] == "kind"
    deny = [r for r in rows if r[1] == "deny"][0]
    assert deny[2] == "'=HYPERLINK(\"http://evil\")" and deny[3] == "-0.1"
    assert len(list(csv.reader(io.StringIO(admin.get("/log.csv?result=unknown").text)))) == 2
    assert all(r[2] == "mia" for r in list(csv.reader(io.StringIO(mia.get("/log.csv").text)))[1:])


# -- uploads ----------------------------------------------------------------------------------------------
def test_oversized_uploads_get_413_and_change_nothing(tmp_path):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS, max_upload_mb=0.5)
    user = store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    app = create_app(cfg, store=store, log=log, engine=None)
    c = client(app)
    login(c, "root")
    token = csrf_of(c.get(f"/users/{user.id}/enrol").text)
    before = store.revision
    page = c.post(f"/users/{user.id}/enrol", {"csrf_token": token},
                  upload_files=[("photos", "big.jpg", b"\xff" * 600_000)], status=413)
    assert "limited to 0.5 MB" in page.text and SECURITY <= set(page.headers)
    assert store.revision == before and reopen_store(store).revision == before


def test_malformed_multipart_is_a_400(site):
    admin = site.clients["alice"]
    res = admin.post(f"/users/{site.ids['carol']}/enrol", b"--xyz\r\ngarbage",
                     content_type="multipart/form-data; boundary=xyz", status=(400, 403))
    assert SECURITY <= set(res.headers)


# -- controller: dashboard, snapshot, unlock -----------------------------------------------------------------
@pytest.fixture
def with_daemon(tmp_path, faces_dir):
    site = door_site(tmp_path, faces_dir)
    return site.store, site.log, site.controller, site.admin, site.mia


def test_dashboard_shows_the_daemon_state_and_recent_decisions(with_daemon):
    store, log, controller, admin, mia = with_daemon
    log.append("grant", user="mia", similarity=0.912, decision="grant", source="camera")
    log.append("deny", user=None, similarity=0.31, decision="deny", source="camera")
    log.append("exit_button")
    page = admin.get("/home")
    assert "locked" in page.text and "running" in page.text and 'src="/live.mjpg"' in page.text
    assert "0.912" in page.text and "0.310" in page.text and "exit_button" not in page.text
    assert "0.310" not in mia.get("/home").text                       # members: only their own events
    snap = mia.get("/snapshot.jpg")
    assert snap.content_type == "image/jpeg" and snap.body[:2] == b"\xff\xd8"
    controller.frame = None                                           # the camera stopped: a state, not an error
    assert "The camera is stopped" in admin.get("/home").text and "/live.mjpg" not in admin.get("/home").text
    still = admin.get("/snapshot.jpg")
    assert still.content_type == "image/jpeg" and still.body[:2] == b"\xff\xd8"


def test_remote_unlock_needs_confirmation_and_is_logged_with_the_admin(with_daemon):
    store, log, controller, admin, mia = with_daemon
    assert "Yes, unlock the door" in admin.get("/unlock").text
    post(admin, "/unlock", page="/unlock")                                  # no confirmation: nothing
    assert controller.unlocked_by == []
    page = post(admin, "/unlock", {"confirm": "yes", "password": PASSWORD}, status=200, page="/unlock")
    assert "was unlocked" in page.text and controller.unlocked_by == ["root"]
    assert [e["user"] for e in log.events(kind="remote_unlock")] == ["root"]
    post(mia, "/unlock", {"confirm": "yes", "password": PASSWORD}, status=403)
    assert controller.unlocked_by == ["root"]


def test_remote_unlock_asks_for_the_password_records_the_address_and_is_rate_limited(with_daemon):
    """Issue 11, item 8: a session left open was enough to open the door any number of times, and the access
    log did not say from where."""
    store, log, controller, admin, mia = with_daemon
    page = post(admin, "/unlock", {"confirm": "yes", "password": "not my password"}, status=403, page="/unlock")
    assert "not your password" in page.text and controller.unlocked_by == []
    post(admin, "/unlock", {"confirm": "yes"}, status=403, page="/unlock")
    assert controller.unlocked_by == []
    codes = [post(admin, "/unlock", {"confirm": "yes", "password": PASSWORD}, page="/unlock",
                  status="*").status_int for _ in range(6)]
    assert codes == [200] * 5 + [429]
    event = log.events(kind="remote_unlock", newest_first=True).__next__()
    assert event["address"] == admin.extra_environ["REMOTE_ADDR"] and event["user_id"] == store.find_user("root").id


def test_without_a_daemon_the_pages_say_so(site):
    admin = site.clients["alice"]
    assert "not running" in admin.get("/home").text
    assert "not running" in admin.get("/unlock").text
    post(admin, "/unlock", {"confirm": "yes"}, status=503, page="/unlock")
    assert admin.get("/snapshot.jpg").content_type == "image/jpeg"    # a picture saying so, not a broken image


def test_redirects_are_relative_whatever_host_the_client_claims(site):
    """Issue 11, item 8: redirects followed Host / X-Forwarded-Host, so a crafted request sent the browser away."""
    c = client(site.app, "192.0.2.77")
    c.extra_environ.update({"HTTP_HOST": "evil.example", "HTTP_X_FORWARDED_HOST": "evil.example"})
    res = c.get("/home", status=303)
    assert res.headers["Location"] == "/login"
    res = login(c, "carol")
    assert res.headers["Location"] == "/home"
