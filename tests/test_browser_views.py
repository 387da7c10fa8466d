"""What the door sees, in a real headless Chromium over real HTTPS, with the real door service.

The daemon runs with a folder camera showing an enrolled person, the real model and simulated pins. The admin
watches the live view (frames with the face box drawn), reads the log with face thumbnails and enrols an unknown
face in two clicks, and reads the charts of a known set of older events; no console errors (the strict CSP
included), no horizontal scroll at desktop and 390 px phone widths. Screenshots go to artifacts/.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from conftest import REPO_ROOT
from edge.camera import FolderSource
from edge.enrolment import enrol
from edge.eventfaces import EventFaces
from edge.liveview import GREEN
from test_browser import chromium  # noqa: F401  (the shared browser fixture)
from web_fixtures import PASSWORD, make_backend

ARTIFACTS = REPO_ROOT / "artifacts"
OBAMA = "face_recognition_examples/obama"
DAY = 86400


def fit(image: np.ndarray, size=(640, 480), background: int = 60) -> np.ndarray:
    """A camera-sized frame with the photograph scaled into it."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), background, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def green_pixels(image: np.ndarray) -> int:
    """Pixels of the live view's "passes" box colour."""
    return int(np.sum(np.all(np.abs(image.astype(int) - np.array(GREEN)) < 40, axis=2)))


KNOWN_DAYS = {5: ("grant", "grant", "deny"), 4: ("grant", "unknown"), 3: ("spoof", "grant", "grant", "grant")}


@pytest.fixture
def door(tmp_path, engine, faces_dir):
    cfg, store, log = make_backend(tmp_path / "state", host="127.0.0.1", port=0)
    cfg = cfg.replace("decision", cooldown_seconds=3.0)
    store.sign_up(username="keeper", email="keeper@example.org", password=PASSWORD)
    barack = store.sign_up(username="barack", email="barack@example.org", password=PASSWORD)
    store.update_user(barack.id, status="active")
    photos = [(n, cv2.imread(str(faces_dir / OBAMA / n))) for n in ("obama.jpg", "obama3.jpg")]
    assert all(r.ok for r in enrol(store, engine, barack.id, photos, source="cli"))
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, name in enumerate(("test_obama1.jpg", "obama2.jpg")):
        cv2.imwrite(str(camera / f"{i}.png"), fit(cv2.imread(str(faces_dir / OBAMA / name))))
    # a known set of older decisions, and an unknown face kept as the door keeps it
    faces = EventFaces.open(cfg, store.keyring)
    stranger = faces.keep(engine.faces(cv2.imread(str(faces_dir / "face_recognition_examples/biden/biden.jpg")))[0].crop)
    noon = time.time() - (time.time() % DAY) + 12 * 3600
    for days_ago, kinds in KNOWN_DAYS.items():
        for i, kind in enumerate(kinds):
            extra = {"photo": stranger} if kind == "unknown" else {}
            log.append(kind, user="barack" if kind in ("grant", "deny", "spoof") else None,
                       similarity=0.85 if kind == "grant" else 0.4, decision="grant" if kind == "grant" else "deny",
                       time=noon - days_ago * DAY + i * 60, **({"attempt_seconds": 1.0} if kind == "grant" else {}),
                       **extra)
    from edge.service import DoorService
    svc = DoorService(cfg, engine=engine, store=store, log_=log, source=FolderSource(folder=camera, fps=8),
                      pin_factory=MockFactory(), web=True).start()
    try:
        yield svc, store, log, faces, camera
    finally:
        svc.close()


def no_horizontal_scroll(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


def test_admin_sees_live_view_faces_and_charts(chromium, door, faces_dir):  # noqa: F811
    svc, store, log, faces, camera = door
    base = svc._web_server.url
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    ctx = chromium.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    try:
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(base + "login")
        page.fill("input[name=username]", "keeper")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url(base + "home")

        # the live view: frames from the folder camera with the door's face box drawn on them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e["kind"] == "grant" and e.get("photo")
                                                      for e in log.events(since=time.time() - 60)):
            time.sleep(0.2)
        page.goto(base + "home", wait_until="domcontentloaded")
        live = page.locator("img.live")
        page.wait_for_function("() => document.querySelector('img.live').naturalWidth > 0", timeout=15000)
        raw = max(green_pixels(cv2.imread(str(p))) for p in camera.iterdir())
        seen = 0
        for _ in range(20):                                   # a few frames: one of them shows the face box
            shot = cv2.imdecode(np.frombuffer(live.screenshot(), np.uint8), cv2.IMREAD_COLOR)
            seen = max(seen, green_pixels(shot))
            if seen > raw + 300:
                break
            time.sleep(0.3)
        assert seen > raw + 300, (seen, raw)
        assert page.locator(".health svg.spark").count() == 5
        page.screenshot(path=str(ARTIFACTS / "views-dashboard-desktop.png"), full_page=True)

        # the log: thumbnails of the door's decisions; an unknown face enrolled in two clicks
        page.click("nav >> text=Log")
        page.wait_for_load_state("load")
        thumbs = page.locator("img.thumb")
        assert thumbs.count() >= 2                                    # the door's grant and the unknown face
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")   # the thumbnails load lazily
        page.wait_for_function("() => [...document.querySelectorAll('img.thumb')]"
                               ".every(img => img.complete && img.naturalWidth === 160)", timeout=15000)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "views-log-desktop.png"), full_page=True)
        form = page.locator("form.enrol-as").first
        form.locator("select").select_option(label="keeper")          # click 1
        form.locator("button:has-text('Enrol as')").click()          # click 2
        page.wait_for_selector("p.flash")
        assert "template of keeper" in page.inner_text("p.flash")
        assert len(store.find_user("keeper").templates) == 1

        # the charts: SVG, and the known older days counted right
        page.click("nav >> text=Charts")
        page.wait_for_load_state("load")
        assert page.locator("svg.chart").count() == 4
        daily = page.locator("section", has=page.locator("h2", has_text="Attempts per day")).locator("svg")
        noon = time.time() - (time.time() % DAY) + 12 * 3600
        for days_ago, kinds in KNOWN_DAYS.items():
            label = time.strftime("%Y-%m-%d", time.localtime(noon - days_ago * DAY))
            for outcome in set(kinds):
                bar = daily.locator(f"rect[data-outcome={outcome}]", has=page.locator(f"title:text-matches('^{label}:')"))
                assert bar.count() == 1 and bar.get_attribute("data-count") == str(kinds.count(outcome)), \
                    (label, outcome)
        assert page.locator("table.per-user td.username", has_text="barack").count() == 1
        page.screenshot(path=str(ARTIFACTS / "views-charts-desktop.png"), full_page=True)
        no_horizontal_scroll(page, 1280)
        cookies = ctx.cookies()
        ctx.close()                                   # one browser at a time: its live view and connections go

        phone = chromium.new_context(ignore_https_errors=True, viewport={"width": 390, "height": 844},
                                     device_scale_factor=2, is_mobile=True, has_touch=True)
        phone.add_cookies(cookies)
        try:
            p = phone.new_page()
            p.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
            p.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            for path, shot in (("home", "dashboard"), ("log", "log"), ("charts", "charts")):
                p.goto(base + path, wait_until="domcontentloaded")
                if path == "home":
                    p.wait_for_function("() => document.querySelector('img.live').naturalWidth > 0", timeout=15000)
                else:
                    p.wait_for_load_state("load")
                no_horizontal_scroll(p, 390)
                p.screenshot(path=str(ARTIFACTS / f"views-{shot}-phone.png"), full_page=True)
        finally:
            phone.close()
    finally:
        ctx.close()
    assert errors == []
