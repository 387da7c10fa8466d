"""Enrolment and test recognition through the admin page, with the real model on real photographs."""

from __future__ import annotations

import cv2
import pytest

from edge.web import create_app
from web_fixtures import PASSWORD, ROUNDS, ControllerDouble, client, csrf_of, login, make_backend, reopen_store


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine, faces_dir):
    cfg, store, log = make_backend(tmp_path_factory.mktemp("state"), bcrypt_rounds=ROUNDS)
    admin = store.add_user(username="root", email="r@x.org", password=PASSWORD, role="admin", status="active")
    obama = store.add_user(username="obama", email="o@x.org", password=PASSWORD, status="active")
    biden = store.add_user(username="biden", email="b@x.org", password=PASSWORD, status="active")
    for user, rel in ((obama, "obama/obama2.jpg"), (biden, "biden/biden2.jpg")):   # enrolled beforehand
        face = engine.enrollment_face(cv2.imread(str(faces_dir / "face_recognition_examples" / rel)))
        store.add_template(user.id, face.embedding, model_id=engine.model_id, source="cli")
    camera_frame = cv2.imread(str(faces_dir / "face_recognition_examples/biden/biden.jpg"))
    controller = ControllerDouble(log, camera_frame, config=cfg)
    app = create_app(cfg, store=store, log=log, engine=engine, controller=controller)
    clients = {"root": client(app), "obama": client(app, "192.0.2.2"), "biden": client(app, "192.0.2.3")}
    for name, c in clients.items():
        login(c, name)
    return {"cfg": cfg, "store": store, "log": log, "clients": clients, "controller": controller,
            "ids": {"root": admin.id, "obama": obama.id, "biden": biden.id}, "faces": faces_dir,
            "engine": engine}


def photo(site, rel):
    path = site["faces"] / rel
    return (path.name, path.read_bytes())


def upload(c, url, files, field="photos", status=200):
    token = csrf_of(c.get("/home").text)
    return c.post(url, {"csrf_token": token}, upload_files=[(field, n, d) for n, d in files], status=status)


def test_a_member_enrols_themself_with_per_photo_verdicts(site):
    store, c, uid = site["store"], site["clients"]["obama"], site["ids"]["obama"]
    url = f"/users/{uid}/enrol"
    page = upload(c, url, [photo(site, "face_recognition_examples/obama/obama.jpg"),
                           photo(site, "face_recognition_examples/obama/obama3.jpg"),
                           photo(site, "face_recognition_examples/_scenes_multi_face/obama_and_biden.jpg"),
                           ("notes.txt", b"this is not a photograph")])
    verdicts = {li.select_one("strong").text: li for li in page.html.select("li.verdict")}
    assert set(verdicts) == {"obama.jpg", "obama3.jpg", "obama_and_biden.jpg", "notes.txt"}
    for name in ("obama.jpg", "obama3.jpg"):
        assert "ok" in verdicts[name]["class"]
        assert verdicts[name].select_one("img")["src"].startswith("data:image/jpeg;base64,")
    assert "rejected" in verdicts["obama_and_biden.jpg"]["class"]
    assert "rejected" in verdicts["notes.txt"]["class"] and "not a photograph" in verdicts["notes.txt"].text
    saved = [t for t in reopen_store(store).get_user(uid).templates if t.source == "upload"]
    assert len(saved) == 2 and {t.model_id for t in saved} == {site["engine"].model_id}
    enrol = list(site["log"].events(kind="enrol"))[-1]
    assert enrol["user"] == "obama" and enrol["templates"] == 2


def test_only_non_images_is_a_400_and_nothing_is_stored(site):
    store, c, uid = site["store"], site["clients"]["root"], site["ids"]["biden"]
    before = store.revision
    page = upload(c, f"/users/{uid}/enrol", [("a.jpg", b"\x89PNG\r\n\x1a\nbroken"), ("b.gif", b"GIF89a")],
                  status=400)
    assert page.text.count("not a photograph") == 2
    assert "Choose one or more" in upload(c, f"/users/{uid}/enrol", [], status=400).text
    assert store.revision == before


def test_admin_enrols_from_the_camera(site):
    store, c, uid = site["store"], site["clients"]["root"], site["ids"]["biden"]
    token = csrf_of(c.get(f"/users/{uid}/enrol").text)
    prompts = getattr(site["controller"], "prompts", 0)
    page = c.post(f"/users/{uid}/enrol/camera", {"csrf_token": token})
    assert site["controller"].captures[-1][0] >= 3
    assert site["controller"].prompts == prompts + 1          # captured while the LEDs ask for a head turn
    assert page.html.select("li.verdict.ok")
    advice = page.html.select_one(".turn-advice").text        # the same frame every time: nobody turned
    assert "Only 1 different look" in advice and "turn your head slowly" in advice
    assert "camera" in {t.source for t in store.get_user(uid).templates}


def test_recognition_names_the_person_above_the_threshold(site):
    c = site["clients"]["root"]
    page = upload(c, "/recognize", [photo(site, "face_recognition_examples/obama/test_obama1.jpg")],
                  field="photo")
    assert page.html.select_one(".match-name").text == "obama"
    similarity = float(page.html.select_one(".similarity").text)
    threshold = site["store"].settings["threshold"] or site["engine"].threshold
    assert similarity >= threshold
    assert "a single photograph is never confirmed live" in page.text        # liveness: passive by default
    stranger = upload(c, "/recognize", [photo(site, "face_recognition_examples/kit_harington/john1.jpeg")],
                      field="photo")
    assert stranger.html.select_one(".match-name") is None and "Unknown" in stranger.text
    nothing = upload(c, "/recognize", [("x.png", b"not an image")], field="photo", status=400)
    assert "not a photograph" in nothing.text
    token = csrf_of(c.get("/recognize").text)
    camera = c.post("/recognize", {"csrf_token": token, "camera": "1"})
    assert camera.html.select_one(".match-name").text == "biden"
    assert "Liveness (" in camera.text                                      # the door's verdict for the face


def test_members_cannot_enrol_others_or_run_recognition(site):
    c = site["clients"]["obama"]
    before = site["store"].revision
    upload(c, f"/users/{site['ids']['biden']}/enrol",
           [photo(site, "face_recognition_examples/obama/obama2.jpg")], status=403)
    token = csrf_of(c.get("/home").text)
    c.post("/recognize", {"csrf_token": token}, status=403)
    assert site["store"].revision == before


def test_settings_page_shows_the_door_threshold_of_the_security_level(site):
    from edge.recognition.security import door_threshold

    c, engine, store = site["clients"]["root"], site["engine"], site["store"]
    people = len(set(store.gallery(engine.model_id).user_ids))
    level = site["engine"].security

    def shown():
        text = c.get("/settings").html.select_one(".door-level").text
        return float(text.split("threshold now:")[1].split()[0]), " ".join(text.split())

    before = dict(store.settings)
    try:
        store.update_settings(threshold=None, security_level=100_000)
        threshold, text = shown()
        assert threshold == pytest.approx(door_threshold(level, people=people), abs=5e-4)
        assert f"{people} people enrolled" in text and "Expected share" in text
        store.update_settings(security_level=10_000_000)
        assert shown()[0] > threshold                                   # stricter level, higher threshold
        store.update_settings(threshold=0.83)
        assert shown() == (0.83, shown()[1]) and "set by the administrator" in shown()[1]
    finally:
        store.update_settings(**{k: before[k] for k in ("threshold", "security_level")})
