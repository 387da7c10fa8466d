"""The access log index: the same events as the log, catching up by decrypting only new lines, encrypted on
disk, following rotation, rebuilt when damaged; the statistics computed from it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from edge import eventstats
from edge.accesslog import AccessLog
from edge.eventindex import EventIndex
from edge.keys import KeyRing

T0 = dt.datetime(2026, 11, 30, 8, 0).astimezone().timestamp()   # a Monday morning, local time


def known_events(log):
    """A known day: alice 3 grants + 1 deny, bob 1 grant + 1 spoof, 2 unknown faces, 1 lockout, and noise."""
    rows = [("grant", "alice", 0.82, 1.2), ("grant", "alice", 0.74, 0.9), ("deny", "alice", 0.58, None),
            ("grant", "alice", 0.90, 1.5), ("grant", "bob", 0.66, 2.0), ("spoof", "bob", 0.71, None),
            ("unknown", None, 0.31, None), ("unknown", None, 0.52, None), ("lockout", None, 0.40, None)]
    for i, (kind, user, sim, seconds) in enumerate(rows):
        extra = {"attempt_seconds": seconds} if seconds is not None else {}
        log.append(kind, user=user, similarity=sim, decision="grant" if kind == "grant" else "deny",
                   time=T0 + i * 1800, **extra)
    log.append("door_opened", time=T0 + 60)
    log.append("login_failed", user="mallory", time=T0 + 120)
    return rows


def test_warm_builds_the_index_in_the_background_at_the_lowest_priority(log):
    for i in range(300):
        log.append("deny", similarity=0.3, decision="deny", time=T0 + i)
    index = EventIndex(log)
    thread = index.warm()
    assert index.warmed.wait(60) and thread.name == "index"
    thread.join(10)
    if index.warm_nice is not None:                                  # Linux: a nice value per thread
        assert index.warm_nice == 19
    events = index.refresh()
    assert len(events) == 300 and index.decrypted == 0                # served from what the warm-up built
    assert index.path.is_file()                                       # and saved: a restart loads it
    reopened = EventIndex(log)
    assert len(reopened.refresh()) == 300 and reopened.decrypted == 0


def test_per_person_rows_follow_the_user_id_not_the_name(log):
    """A renamed account is one person; a new account with a removed one's name is another; events logged
    before ids were recorded join the one account that had their name, else count by name."""
    rows = [("grant", "alice", None, None), ("deny", "bob", None, None),          # before ids were logged
            ("grant", "alice", "id-a", 1.0), ("deny", "alice", "id-a", None),     # alice ...
            ("grant", "alicia", "id-a", 3.0),                                     # ... renamed to alicia
            ("deny", "bob", "id-b1", None), ("spoof", "bob", "id-b1", None),      # bob, later removed
            ("grant", "bob", "id-b2", 2.0),                                       # a new account called bob
            ("grant", "carol", None, None)]                                       # before ids were logged
    for i, (kind, user, user_id, seconds) in enumerate(rows):
        extra = {k: v for k, v in (("user_id", user_id), ("attempt_seconds", seconds)) if v is not None}
        log.append(kind, user=user, similarity=0.8, time=T0 + i * 60, **extra)
    people = [(s.user, s.user_id, s.grants, s.refusals, s.median_seconds)
              for s in eventstats.per_user(EventIndex(log).refresh())]
    assert people == [("alicia", "id-a", 3, 1, 2.0), ("bob", "id-b1", 0, 2, None), ("bob", None, 0, 1, None),
                      ("bob", "id-b2", 1, 0, 2.0), ("carol", None, 1, 0, None)]


def test_index_holds_what_the_log_holds_and_catches_up_incrementally(log):
    known_events(log)
    index = EventIndex(log)
    events = index.refresh()
    assert len(events) == 11 and index.decrypted == 11
    assert events.kind_names(events.select(kinds=("grant",))) == ["grant"] * 4
    assert events.user_names(events.select(user="alice")) == ["alice"] * 4
    assert index.refresh() is events and index.decrypted == 0                  # nothing new: nothing decrypted
    log.append("grant", user="carol", similarity=0.8, time=T0 + 9 * 1800)
    events = index.refresh()
    assert len(events) == 12 and index.decrypted == 1
    newest = index.read_events(events, events.select(kinds=("grant",))[::-1][:2])
    assert [e["user"] for e in newest] == ["carol", "bob"]


def test_index_is_encrypted_on_disk_and_reloaded_without_decrypting_the_log(log, ring, tmp_path):
    known_events(log)
    index = EventIndex(log, save_after=1)
    index.refresh()
    data = index.path.read_bytes()
    assert index.path.name == "access.log.index"
    for secret in (b"alice", b"mallory", b"resident"):               # long enough not to occur in base64 by chance
        assert secret not in data
    assert ring.decrypt(data)                                             # one Fernet token under the log's key
    again = EventIndex(AccessLog(log.path, ring))
    events = again.refresh()
    assert len(events) == 11 and again.decrypted == 0
    # another key cannot read it: rebuilt from the log (which that key cannot read either: empty)
    stranger = EventIndex(AccessLog(log.path, KeyRing.generate()))
    assert len(stranger.refresh()) == 0


def test_a_damaged_index_is_rebuilt_from_the_log(log, ring):
    known_events(log)
    index = EventIndex(log, save_after=1)
    index.refresh()
    index.path.write_bytes(b"garbage")
    again = EventIndex(AccessLog(log.path, ring))
    assert len(again.refresh()) == 11 and again.decrypted == 11


def test_index_follows_rotation_and_a_torn_last_line(tmp_path, ring):
    log = AccessLog(tmp_path / "access.log", ring, max_bytes=2000, keep=2)
    index = EventIndex(log)
    for i in range(30):
        log.append("grant", user=f"u{i}", similarity=0.8, time=T0 + i)
        if i % 7 == 0:
            index.refresh()
    events = index.refresh()
    from_log = [e["user"] for e in log.events()]
    assert events.user_names(np.arange(len(events))) == from_log              # rotated-away events left too
    assert len(from_log) < 30
    with open(log.path, "ab") as fh:
        fh.write(b"gAAAAAtorn")                                                # a crash during an append
    assert len(index.refresh()) == len(from_log)
    log.append("deny", user="late", similarity=0.5, time=T0 + 99)
    events = index.refresh()
    assert events.user_names(events.select(kinds=("deny",))) == ["late"]


def test_statistics_of_a_known_day(log):
    known_events(log)
    events = EventIndex(log).refresh()
    hours = eventstats.attempts(events, until=T0 + 5 * 3600, seconds=3600, count=6)
    assert hours.counts["grant"] == [2, 1, 1, 0, 0, 0]
    assert hours.counts["deny"] == [0, 1, 0, 0, 0, 0]
    assert hours.counts["spoof"] == [0, 0, 1, 0, 0, 0]
    assert hours.counts["unknown"] == [0, 0, 0, 2, 1, 0]                      # the lockout counts as unknown
    assert hours.total() == 9
    days = eventstats.attempts(events, until=T0, seconds=86400, count=7)
    assert days.counts["grant"][-1] == 4 and sum(days.counts["grant"]) == 4
    hist = eventstats.similarity_histograms(events, bins=12, lo=-0.2, hi=1.0)
    assert sum(hist.grants) == 4 and sum(hist.refusals) == 5
    assert hist.grants[9] == 1 and hist.grants[10] == 2                        # 0.74 | 0.82, 0.90 (0.1 wide)
    users = {s.user: s for s in eventstats.per_user(events)}
    assert set(users) == {"alice", "bob"}                                      # login_failed is not an attempt
    assert (users["alice"].grants, users["alice"].refusals) == (3, 1)
    assert users["alice"].grant_rate == 0.75 and users["alice"].median_seconds == pytest.approx(1.2)
    assert (users["bob"].grants, users["bob"].refusals, users["bob"].median_seconds) == (1, 1, 2.0)
    higher = eventstats.what_if(events, current=0.6, threshold=0.75)
    assert (higher.attempts, higher.grants_lost, higher.refusals_passing) == (9, 2, 0)   # 0.74, 0.66
    lower = eventstats.what_if(events, current=0.6, threshold=0.5)
    assert (lower.grants_lost, lower.refusals_passing, lower.strangers) == (0, 2, 1)     # 0.58 deny, 0.52 unknown
    assert eventstats.what_if(events, current=0.6, threshold=0.5, last=3).attempts == 3
