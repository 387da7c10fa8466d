"""The bound on heavy web requests (issue 11, item 1)."""

from __future__ import annotations

import threading

import pytest
from bottle import HTTPError

from edge.web.heavy import HeavyGate


def test_requests_beyond_the_slots_are_answered_503_and_the_slot_is_freed_after_errors():
    gate = HeavyGate(slots=1, wait_seconds=0.05)
    inside, leave = threading.Event(), threading.Event()

    def busy():
        with gate():
            inside.set()
            leave.wait(5)

    t = threading.Thread(target=busy)
    t.start()
    assert inside.wait(5)
    with pytest.raises(HTTPError) as refused:
        with gate():
            pass
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"] == "10"
    leave.set()
    t.join(5)
    with pytest.raises(ValueError):
        with gate():
            raise ValueError("a bad photograph")
    with gate():                                     # the slot came back after the error
        pass
    assert gate.refused == 1
