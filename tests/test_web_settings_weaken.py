"""Settings that weaken the door need an explicit confirmation and are logged as such (issue 11, item 8)."""

from __future__ import annotations

import logging

from edge.web import create_app
from web_fixtures import PASSWORD, ROUNDS, client, form_for, login, make_backend


def test_a_lower_threshold_or_one_frame_voting_must_be_confirmed_and_is_logged(tmp_path, engine, caplog):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    app = create_app(cfg, store=store, log=log, engine=engine)
    admin = client(app, "192.0.2.70")
    login(admin, "root")
    before = dict(store.settings)
    form = form_for(admin.get("/settings"), "/settings")
    form["threshold"] = f"{engine.threshold - 0.2:.2f}"
    form["frames_required"] = "1"
    page = form.submit(status=400)
    assert "easier to open" in page.text and "calibrated" in page.text and "one matching frame" in page.text
    assert store.settings == before                                      # nothing saved without the confirmation
    caplog.set_level(logging.WARNING)
    form = form_for(page, "/settings")
    form["confirm_weaker"] = "yes"
    form.submit(status=303)
    assert store.settings["threshold"] < engine.threshold and store.settings["frames_required"] == 1
    event = list(log.events(kind="settings_changed"))[-1]
    assert len(event["weakened"]) == 2 and event["user"] == "root"
    journal = [r.getMessage() for r in caplog.records if "weaken the door" in r.getMessage()]
    assert journal and "root" not in journal[0] and store.find_user("root").id in journal[0]   # by user id
    form = form_for(admin.get("/settings"), "/settings")
    form["unlock_seconds"] = "4"                   # other changes once the weaker values are saved: no nagging
    form.submit(status=303)


def test_stricter_settings_need_no_confirmation(tmp_path, engine):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS)
    store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    admin = client(create_app(cfg, store=store, log=log, engine=engine), "192.0.2.71")
    login(admin, "root")
    form = form_for(admin.get("/settings"), "/settings")
    form["threshold"] = f"{engine.threshold + 0.05:.2f}"
    form.submit(status=303)
    assert "weakened" not in list(log.events(kind="settings_changed"))[-1]


def test_a_lower_security_level_is_a_weakening():
    from edge.config import weakenings

    assert weakenings({"security_level": 100_000}, model_threshold=0.69) == []
    assert weakenings({"security_level": 10_000_000}, model_threshold=0.69) == []
    reasons = weakenings({"security_level": 1_000}, model_threshold=0.69)
    assert len(reasons) == 1 and "1 stranger in 1,000 attempts" in reasons[0]
