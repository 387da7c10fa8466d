"""Who sees whose comings and goings (issue 11, items 4 and 8): a pending account sees only its own status, a
member only their own decisions, and a new account never inherits a deleted one's events."""

from __future__ import annotations

import time

import pytest

from edge.status import LastDecision
from edge.web import create_app
from web_fixtures import PASSWORD, ROUNDS, ControllerDouble, client, login, make_backend


class Door(ControllerDouble):
    last = None

    def status(self):
        from dataclasses import replace

        return replace(super().status(), last_decision=self.last)


@pytest.fixture
def site(tmp_path):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    alice = store.add_user(username="alice", email="a@x.org", password=PASSWORD, status="active")
    store.add_user(username="mallory", email="m@x.org", password=PASSWORD, status="pending")
    door = Door(log, None, config=cfg)
    door.last = LastDecision(kind="grant", user="alice", similarity=0.912, time=time.time(), user_id=alice.id)
    log.append("grant", user="alice", user_id=alice.id, similarity=0.912, source="door")
    app = create_app(cfg, store=store, log=log, engine=None, controller=door)
    return store, log, door, app


def test_a_pending_account_sees_its_own_status_and_nothing_of_the_door(site):
    store, log, door, app = site
    c = client(app, "192.0.2.50")
    login(c, "mallory")
    page = c.get("/home").text
    assert "waiting for approval" in page
    for leak in ("alice", "0.912", "GPIO17", "relay", "running", "locked"):
        assert leak not in page, leak


def test_a_member_sees_only_their_own_decisions(site):
    store, log, door, app = site
    bob = store.add_user(username="bob", email="b@x.org", password=PASSWORD, status="active")
    c = client(app, "192.0.2.51")
    login(c, "bob")
    page = c.get("/home").text
    assert "alice" not in page and "0.912" not in page and "GPIO17" not in page
    door.last = LastDecision(kind="grant", user="bob", similarity=0.871, time=time.time(), user_id=bob.id)
    assert "0.871" in c.get("/home").text
    admin = client(app, "192.0.2.52")
    login(admin, "root")
    assert "GPIO17" in admin.get("/home").text


def test_a_new_account_with_a_deleted_users_name_does_not_inherit_their_events(site):
    store, log, door, app = site
    old = store.add_user(username="carl", email="c@x.org", password=PASSWORD, status="active")
    log.append("grant", user="carl", user_id=old.id, similarity=0.95, source="door")
    log.append("deny", user="carl", similarity=0.55, source="door")          # an event from before user ids
    store.remove_user(old.id)
    time.sleep(0.01)
    new = store.add_user(username="carl", email="c2@x.org", password=PASSWORD, status="active")
    log.append("grant", user="carl", user_id=new.id, similarity=0.88, source="door")
    c = client(app, "192.0.2.53")
    login(c, "carl")
    for page in (c.get("/home").text, c.get("/log").text, c.get("/log.csv").text):
        assert "0.880" in page or "0.88" in page
        assert "0.950" not in page and "0.95," not in page and "0.550" not in page and "0.55," not in page
