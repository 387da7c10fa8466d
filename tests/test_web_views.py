"""What the door sees, on the admin page: faces in the log and "enrol as", the charts of a known event set,
the door health card, and the live view streamed over the real server (and let go when nobody watches)."""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import time

import cv2
import numpy as np
import pytest

from edge.eventfaces import EventFaces
from edge.web import WebServer
from web_fixtures import csrf_of, door_site, form_for

JPEG = b"\xff\xd8\xff"


@pytest.fixture
def views(tmp_path, faces_dir, engine):
    site = door_site(tmp_path, faces_dir, engine=engine, host="127.0.0.1", port=0)
    return site.cfg, site.store, site.log, site.controller, site.app, site.admin, site.mia


def door_face(engine, faces_dir, path):
    """The aligned crop the door would keep for a real photograph."""
    return engine.faces(cv2.imread(str(faces_dir / path)))[0].crop


def test_the_log_shows_faces_to_admins_and_an_unknown_face_is_enrolled_in_two_clicks(views, engine, faces_dir):
    cfg, store, log, controller, app, admin, mia = views
    faces = EventFaces.open(cfg, store.keyring)
    stranger = faces.keep(door_face(engine, faces_dir, "face_recognition_examples/biden/biden.jpg"))
    known = faces.keep(door_face(engine, faces_dir, "face_recognition_examples/obama/obama.jpg"))
    log.append("grant", user="mia", similarity=0.91, decision="grant", photo=known)
    log.append("unknown", similarity=0.31, decision="deny", photo=stranger)
    page = admin.get("/log")
    assert f'src="/faces/{stranger}.jpg"' in page.text and f'src="/faces/{known}.jpg"' in page.text
    thumb = admin.get(f"/faces/{stranger}.jpg")
    assert thumb.content_type == "image/jpeg" and thumb.body.startswith(JPEG)
    assert "/faces/" not in mia.get("/log").text                               # members: no faces
    mia.get(f"/faces/{stranger}.jpg", status=403)
    admin.get("/faces/20200101/000000-000000.jpg", status=404)
    admin.get("/faces/..%2F..%2Fdb.key.jpg", status=404)

    form = form_for(page, "/faces/enrol")                                       # only the unknown face has one
    assert form["photo"].value == stranger
    form["user"] = store.find_user("mia").id                                    # click 1: choose the person
    done = form.submit(status=303)                                              # click 2: enrol
    assert done.location.endswith("/log")
    mia_user = store.find_user("mia")
    assert len(mia_user.templates) == 1 and controller.reloads == 1
    probe = engine.faces(cv2.imread(str(faces_dir / "face_recognition_examples/biden/biden.jpg")))[0]
    assert float(np.dot(mia_user.templates[0].embedding, probe.embedding)) > 0.9
    enrolled = list(log.events(kind="enrol"))
    assert enrolled[-1]["user"] == "mia" and enrolled[-1]["source"] == "door" and enrolled[-1]["admin"] == "root"
    assert "template of mia" in admin.get("/log").text
    page = admin.get("/log")
    token = csrf_of(page.text)
    admin.post("/faces/enrol", {"csrf_token": token, "photo": "../db.key", "user": mia_user.id}, status=400)
    admin.post("/faces/enrol", {"csrf_token": token, "photo": stranger, "user": "nobody"}, status=400)


def test_charts_count_a_known_set_of_events(views):
    cfg, store, log, controller, app, admin, mia = views
    store.update_settings(threshold=0.80)          # an explicit threshold: the counts below are relative to it
    now = time.time()
    rows = [("grant", "alice", 0.82, 1.2), ("grant", "alice", 0.84, 0.9), ("deny", "alice", 0.58, None),
            ("grant", "alice", 0.90, 1.5), ("grant", "bob", 0.81, 2.0), ("spoof", "bob", 0.71, None),
            ("unknown", None, 0.31, None), ("unknown", None, 0.52, None), ("lockout", None, 0.40, None)]
    for i, (kind, user, sim, seconds) in enumerate(rows):
        extra = {"attempt_seconds": seconds} if seconds else {}
        log.append(kind, user=user, similarity=sim, time=now - 3600 * (i + 1), **extra)
    log.append("door_opened", time=now - 60)
    log.append("grant", user="alice", similarity=0.83, time=now - 40 * 86400)  # outside the 30 days
    page = admin.get("/charts?days=30&threshold=0.55")
    assert page.text.count("<svg") == 4 and "<script" not in page.text
    legend = dict(re.findall(r'class="legend" data-outcome="(\w+)" data-total="(\d+)"', page.text))
    daily = page.text.split("<h2>Attempts per day", 1)[1].split("</svg>")[0]
    daily_legend = dict(re.findall(r'class="legend" data-outcome="(\w+)" data-total="(\d+)"', daily))
    assert daily_legend == {"grant": "4", "deny": "1", "unknown": "3", "spoof": "1"}
    assert legend == {"grant": "4", "deny": "1", "unknown": "3", "spoof": "1"}  # the hourly chart comes first
    histogram = page.text.split("<h2>Similarity of grants and refusals", 1)[1].split("</svg>")[0]
    counts = {}
    for series, count in re.findall(r'data-outcome="(grant|refusal)" data-count="(\d+)"', histogram):
        counts[series] = counts.get(series, 0) + int(count)
    assert counts == {"grant": 4, "refusal": 5}
    assert f'data-value="{store.settings["threshold"]:.3f}"' in histogram
    what_if = re.sub(r"\s+", " ", page.text.split('class="what-if"')[1].split("</p>")[0])
    assert "<strong class=\"changed\">2</strong> of the last 10 attempts" in what_if   # 0.58 deny, 0.71 spoof
    assert "2 refusals let in (0 of them unknown faces)" in what_if
    people = re.findall(r'<td class="username">(\w+)</td><td>(\d+)</td><td>(\d+)</td>', page.text)
    assert people == [("alice", "3", "1"), ("bob", "1", "1")]
    assert "1.2 s" in page.text and "75 %" in page.text
    mia.get("/charts", status=403)
    admin.get("/charts?threshold=2", status=400)


def test_charts_count_people_by_account_under_their_current_names(views):
    """mia renamed to mila is one row under her new name; a removed bob and the new bob are two rows."""
    cfg, store, log, controller, app, admin, mia = views
    mia_id = store.find_user("mia").id
    now = time.time()
    log.append("grant", user="mia", user_id=mia_id, similarity=0.9, time=now - 7200)
    store.update_user(mia_id, username="mila")
    log.append("deny", user="mila", user_id=mia_id, similarity=0.6, time=now - 3600)
    old_bob = store.add_user(username="bob", email="b@x.org", status="active")
    log.append("deny", user="bob", user_id=old_bob.id, similarity=0.6, time=now - 5400)
    log.append("spoof", user="bob", user_id=old_bob.id, similarity=0.7, time=now - 5000)
    store.remove_user(old_bob.id)
    new_bob = store.add_user(username="bob", email="b@x.org", status="active")
    log.append("grant", user="bob", user_id=new_bob.id, similarity=0.9, time=now - 1800)
    page = admin.get("/charts?days=1")
    people = re.findall(r'<td class="username">([^<]+)</td><td>(\d+)</td><td>(\d+)</td>', page.text)
    assert people == [("bob (removed)", "0", "2"), ("mila", "1", "1"), ("bob", "1", "0")]


def test_the_dashboard_shows_door_health_and_a_missing_camera_without_errors(views, caplog):
    cfg, store, log, controller, app, admin, mia = views
    for i in range(10):
        controller.health.frame(0.05, now=time.time() - 5 + i * 0.2)
    controller.health.count("relay_operations")
    controller.health.count("held_open_alarms")
    page = admin.get("/home")
    assert page.text.count('class="spark"') == 5 and "Relay operations" in page.text
    assert "50 ms" in page.text and page.text.count("1 in 24 h") == 2
    assert "Door health" not in mia.get("/home").text                          # admins only
    controller.frame = None
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            page = admin.get("/home")
            picture = admin.get("/live.mjpg")
    assert 'class="no-camera"' in page.text and "/live.mjpg" not in page.text
    assert picture.content_type == "image/jpeg" and picture.body.startswith(JPEG)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]    # a state, not an error


def test_the_live_view_streams_over_the_real_server_and_stops_when_nobody_watches(views):
    cfg, store, log, controller, app, admin, mia = views
    server = WebServer(cfg, app).start()
    try:
        cookie = "; ".join(f"{k}={v}" for k, v in admin.cookies.items())
        parts = []
        for _ in range(2):                                                     # twice: the place is given back
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context(),
                                               timeout=10)
            conn.request("GET", "/live.mjpg", headers={"Cookie": cookie})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Content-Type").startswith("multipart/x-mixed-replace")
            data = b""
            while data.count(b"--frame") < 3:
                data += resp.read1(65536)
            parts.append(data)
            assert controller.live.viewers == 1
            conn.close()                                                       # the viewer goes away
            deadline = time.monotonic() + 10
            while controller.live.viewers and time.monotonic() < deadline:
                time.sleep(0.05)
            assert controller.live.viewers == 0
        body = parts[0].split(b"\r\n\r\n", 1)[1]
        image = cv2.imdecode(np.frombuffer(body[:body.index(b"\r\n--frame")], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] == 480                     # scaled down for the page
    finally:
        server.stop()
