"""The admin page in a real headless Chromium (Debian's package) driven by Playwright, over real HTTPS.

One story, as a person would do it: sign up the first admin, log out and in again, a second person signs up,
the admin approves and enrols them from real photographs, finds them in the users list, and test recognition
names them on a different photograph. Screenshots of the dashboard (desktop and phone) go to artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from conftest import REPO_ROOT, missing
from edge.config import DecisionConfig
from edge.decision import door_policy
from edge.web import WebServer, create_app
from web_fixtures import PASSWORD, ControllerDouble, make_backend

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "artifacts"


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).is_file():
        missing("Chromium is not installed: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed in the virtualenv")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def served(tmp_path, engine, faces_dir):
    cfg, store, log = make_backend(tmp_path, host="127.0.0.1", port=0)
    door_camera = cv2.imread(str(faces_dir / "face_recognition_examples/obama/obama2.jpg"))
    controller = ControllerDouble(log, door_camera, config=cfg)
    app = create_app(cfg, store=store, log=log, engine=engine, controller=controller)
    server = WebServer(cfg, app).start()
    yield server, store, engine
    server.stop()


def sign_up(page, base, username, email):
    page.goto(base + "signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("button[type=submit]:has-text('Create account')")


def test_admin_enrols_a_person_and_recognises_them(chromium, served, faces_dir):
    server, store, engine = served
    base = server.url
    obama = faces_dir / "face_recognition_examples" / "obama"
    ARTIFACTS.mkdir(exist_ok=True)
    admin_ctx = chromium.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 860})
    member_ctx = chromium.new_context(ignore_https_errors=True)
    try:
        page = admin_ctx.new_page()
        sign_up(page, base, "keeper", "keeper@example.org")
        page.wait_for_url(base + "home")
        assert "administrator" in page.inner_text("main")
        page.click("button:has-text('Log out')")
        page.wait_for_url(base + "login")
        page.fill("input[name=username]", "keeper")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url(base + "home")

        visitor = member_ctx.new_page()
        sign_up(visitor, base, "barack", "barack@example.org")
        visitor.wait_for_selector("text=waits for an administrator")    # the same answer whether free or not
        visitor.goto(base + "login")
        visitor.fill("input[name=username]", "barack")
        visitor.fill("input[name=password]", PASSWORD)
        visitor.click("button:has-text('Log in')")
        visitor.wait_for_url(base + "home")
        assert "waiting for approval" in visitor.inner_text("main")

        page.click("nav >> text=Users")
        row = page.locator("tr", has=page.locator("td.username", has_text="barack"))
        row.locator("button:has-text('Approve')").click()
        row = page.locator("tr", has=page.locator("td.username", has_text="barack"))
        assert row.locator("td.status-active").count() == 1
        row.locator("a:has-text('Enrol')").click()
        page.set_input_files("input[name=photos]", [str(obama / "obama.jpg"), str(obama / "obama3.jpg")])
        page.click("button:has-text('Check and enrol')")
        page.wait_for_selector("li.verdict")
        assert page.locator("li.verdict.ok").count() == 2, page.inner_text("main")
        assert page.locator("li.verdict.ok img").first.get_attribute("src").startswith("data:image/jpeg;base64,")
        assert len(store.find_user("barack").templates) == 2

        page.click("nav >> text=Users")
        row = page.locator("tr", has=page.locator("td.username", has_text="barack"))
        assert row.locator("td").nth(4).inner_text() == "2"

        page.click("nav >> text=Test")
        page.set_input_files("input[name=photo]", str(obama / "test_obama1.jpg"))
        page.click("button:has-text('Who is this?')")
        page.wait_for_selector("li.verdict")
        assert page.inner_text(".match-name") == "barack"
        similarity = float(page.inner_text(".similarity"))
        threshold = float(re.search(r"threshold (\d\.\d+)", page.inner_text("main")).group(1))
        # the door's threshold: the security level for the one person enrolled (no override is set)
        policy, _source = door_policy(DecisionConfig(), store.settings, security=engine.security,
                                      model_threshold=engine.threshold, people=1)
        assert threshold == pytest.approx(policy.threshold, abs=1e-3) and similarity >= threshold

        page.click("nav >> text=Dashboard")
        page.wait_for_function("() => document.querySelector('img.live').naturalWidth > 0")   # the live view
        page.screenshot(path=str(ARTIFACTS / "dashboard-desktop.png"), full_page=True)
        phone = chromium.new_context(ignore_https_errors=True, viewport={"width": 390, "height": 844},
                                     device_scale_factor=2, is_mobile=True, has_touch=True)
        phone.add_cookies(admin_ctx.cookies())
        try:
            phone_page = phone.new_page()
            phone_page.goto(base + "users")
            phone_page.screenshot(path=str(ARTIFACTS / "users-phone.png"), full_page=True)
            phone_page.goto(base + "home", wait_until="domcontentloaded")
            phone_page.wait_for_function("() => document.querySelector('img.live').naturalWidth > 0")
            width = phone_page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390                                   # nothing wider than the phone screen
            phone_page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
        finally:
            phone.close()
    finally:
        admin_ctx.close()
        member_ctx.close()
