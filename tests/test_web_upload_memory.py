"""Twenty large photographs posted to an enrolment page: decoded and judged one at a time (issue 11, item 1).

Memory is measured with tracemalloc, which sees every decoded image (OpenCV allocates its arrays through numpy):
a ratio against the size of one decoded photograph, not a time or an absolute figure.
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np

from edge.web import create_app
from web_fixtures import PASSWORD, ROUNDS, client, csrf_of, login, make_backend


def test_twenty_large_uploads_never_hold_more_than_a_few_decoded_photographs(tmp_path, engine, faces_dir):
    cfg, store, log = make_backend(tmp_path, bcrypt_rounds=ROUNDS, max_upload_mb=50)
    member = store.add_user(username="mia", email="m@x.org", password=PASSWORD, status="active")
    app = create_app(cfg, store=store, log=log, engine=engine)
    c = client(app, "192.0.2.40")
    login(c, "mia")
    face = cv2.imread(str(faces_dir / "face_recognition_examples" / "obama" / "obama.jpg"))
    big = cv2.resize(face, (1600, 2000), interpolation=cv2.INTER_CUBIC)     # a phone-sized portrait
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    one_image = big.nbytes
    del face, big
    token = csrf_of(c.get("/home").text)
    tracemalloc.start()
    try:
        page = c.post(f"/users/{member.id}/enrol", {"csrf_token": token},
                      upload_files=[("photos", f"p{i}.jpg", data) for i in range(20)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.status_int == 200 and len(page.html.select("li.verdict")) == 20
    # Every photograph was decoded and judged; the same face twenty times is one template (near-duplicates add
    # nothing to the door and are rejected with that reason).
    assert len(store.get_user(member.id).templates) == 1
    assert len([li for li in page.html.select("li.verdict.rejected") if "near-duplicate" in li.text]) == 19
    assert peak < 5 * one_image, f"peak {peak / 1e6:.0f} MB for photographs of {one_image / 1e6:.0f} MB each"
