"""The door's recognition thread gets the models before the admin page's work (issue 11, item 1)."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge.recognition.engine import DoorFirstLock


def _wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "threads did not reach the lock"
        time.sleep(0.005)


def test_a_waiting_door_thread_goes_before_web_threads_that_came_first():
    preferred: set[int] = set()
    lock = DoorFirstLock(preferred)
    order, release = [], threading.Event()

    def worker(name, door=False):
        if door:
            preferred.add(threading.get_ident())
        with lock:
            order.append(name)

    with lock:                                                   # a web request is detecting a large photograph
        webs = [threading.Thread(target=worker, args=(f"web{i}",)) for i in range(3)]
        for t in webs:
            t.start()
        _wait_for(lambda: len(lock._cond._waiters) == 3)
        door = threading.Thread(target=worker, args=("door", True))
        door.start()
        _wait_for(lambda: len(lock._cond._waiters) == 4)
    for t in [*webs, door]:
        t.join(timeout=5)
    assert order[0] == "door" and sorted(order[1:]) == ["web0", "web1", "web2"]


def test_the_engine_serves_the_preferred_thread_with_the_same_results(engine, faces_dir):
    import cv2

    image = cv2.imread(str(faces_dir / "face_recognition_examples" / "obama" / "obama.jpg"))
    before = engine.faces(image)[0].embedding
    results = []

    def door():
        engine.prefer_current_thread()
        results.append(engine.faces(image)[0].embedding)

    t = threading.Thread(target=door)
    t.start()
    t.join(timeout=30)
    assert np.allclose(results[0], before)
