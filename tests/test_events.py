"""The event hub: listeners hear every event in order, a failing or slow listener never blocks emit()."""

from __future__ import annotations

import threading

from edge.events import EventHub


def test_listeners_hear_events_in_order_and_a_failing_one_does_not_stop_the_others():
    hub = EventHub()
    heard = []
    hub.add_listener(lambda e: 1 / 0)
    hub.add_listener(heard.append)
    for n in range(5):
        hub.emit("grant", user=f"u{n}", similarity=0.9, votes=3)
    hub.close()
    assert [e.user for e in heard] == ["u0", "u1", "u2", "u3", "u4"]
    assert heard[0].kind == "grant" and heard[0].details == {"votes": 3} and heard[0].source == "door"


def test_emit_never_blocks_on_a_stuck_listener_and_counts_what_it_drops():
    hub = EventHub(queue_size=10)
    release = threading.Event()
    hub.add_listener(lambda e: release.wait())
    for _ in range(100):                           # a blocking queue would hang here for ever
        hub.emit("relay", active=True, reason="test")
    assert hub.dropped >= 100 - 10 - 1
    release.set()
    hub.close()


def test_removed_listener_hears_nothing_more():
    hub = EventHub()
    heard = []
    remove = hub.add_listener(heard.append)
    hub.emit("door_opened")
    hub.close(timeout=2.0)
    remove()
    assert [e.kind for e in heard] == ["door_opened"]
