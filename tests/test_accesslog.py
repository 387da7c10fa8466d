"""The encrypted append-only access log: round trip, torn lines, rotation, secrecy, two writers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import time

import numpy as np
import pytest

from edge.accesslog import AccessLog
from edge.errors import StoreError
from edge.keys import KeyRing


def test_events_come_back_with_every_field(log):
    log.append("grant", user="Zoë", similarity=np.float32(0.8125), decision="grant", source="camera",
               frames=3, margin=np.float64(0.2))
    log.append("door_opened", source="contact")
    first, second = list(log.events())
    assert first["kind"] == "grant" and first["user"] == "Zoë" and first["similarity"] == 0.8125
    assert (first["decision"], first["source"], first["frames"], first["margin"]) == ("grant", "camera", 3, 0.2)
    assert abs(first["time"] - time.time()) < 60
    assert second["kind"] == "door_opened" and second["user"] is None and second["similarity"] is None


def test_filters_by_time_user_and_kind(log):
    log.append("deny", user="mallory")
    time.sleep(0.01)
    cut = time.time()
    log.append("grant", user="Alice")
    log.append("grant", user="bob")
    assert [e["user"] for e in log.events(since=cut)] == ["Alice", "bob"]
    assert [e["user"] for e in log.events(since=dt.datetime.fromtimestamp(cut))] == ["Alice", "bob"]
    assert [e["kind"] for e in log.events(user="ALICE")] == ["grant"]
    assert [e["user"] for e in log.events(kind="deny")] == ["mallory"]


def test_bad_kind_or_detail_is_refused_and_writes_nothing(log):
    with pytest.raises(StoreError, match="kind"):
        log.append("Grant Now")
    with pytest.raises(StoreError, match="cannot store a object"):
        log.append("grant", thing=object())
    assert list(log.events()) == []


def test_a_torn_last_line_is_reported_skipped_and_not_glued_to_the_next_event(log, ring, caplog):
    for i in range(3):
        log.append("grant", seq=i)
    token = ring.encrypt(b'{"kind":"grant","seq":99}')
    with open(log.path, "ab") as fh:  # what a crash in the middle of an append leaves behind
        fh.write(token[: len(token) // 2])
    with caplog.at_level(logging.WARNING, logger="edge.accesslog"):
        assert [e["seq"] for e in log.events()] == [0, 1, 2]
    assert log.skipped == 1 and "incomplete" in caplog.text
    log.append("grant", seq=3)
    assert [e["seq"] for e in log.events()] == [0, 1, 2, 3]
    assert log.skipped == 1  # the fragment is now its own (skipped) line


def test_a_damaged_line_costs_only_that_event(log):
    for i in range(4):
        log.append("grant", seq=i)
    lines = log.path.read_bytes().split(b"\n")
    lines[1] = lines[1][:20] + (b"A" if lines[1][20:21] != b"A" else b"B") + lines[1][21:]
    log.path.write_bytes(b"\n".join(lines))
    assert [e["seq"] for e in log.events()] == [0, 2, 3] and log.skipped == 1


def test_rotation_by_size_keeps_n_files(tmp_path, ring):
    log = AccessLog(tmp_path / "access.log", ring, max_bytes=4096, keep=2)
    for i in range(200):
        log.append("deny", user="someone", seq=i)
    files = log.files()
    assert [p.name for p in files] == ["access.log.2", "access.log.1", "access.log"]
    assert all(p.stat().st_size <= 4096 for p in files)
    seqs = [e["seq"] for e in log.events()]
    assert seqs == list(range(seqs[0], 200)) and seqs[0] > 0  # oldest dropped, the rest complete, in order
    # Newest first walks the same events backwards, across the rotated files (the dashboard's "last few").
    assert [e["seq"] for e in log.events(newest_first=True)] == seqs[::-1]


def test_the_log_holds_no_plaintext_and_is_private(log):
    log.append("grant", user="zebrastripe", similarity=0.93, decision="grant", source="camera",
               email="zebra@example.org")
    raw = log.path.read_bytes()
    for needle in (b"zebrastripe", b"zebra@example.org", b"grant", b"0.93", b"camera"):
        assert needle not in raw
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    assert raw.count(b"\n") == 1


def test_another_key_reads_nothing(log):
    log.append("grant", user="x")
    other = AccessLog(log.path, KeyRing.generate())
    assert list(other.events()) == [] and other.skipped == 1


def test_two_processes_appending_never_interleave(tmp_path, ring):
    path = tmp_path / "access.log"
    per_child = 150
    pids = []
    for child in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                writer = AccessLog(path, ring, max_bytes=1 << 20)
                for i in range(per_child):
                    writer.append("grant", user=f"child{child}", seq=i, padding="x" * (50 + i % 200))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    log = AccessLog(path, ring)
    events = list(log.events())
    assert log.skipped == 0 and len(events) == 2 * per_child
    for child in range(2):
        assert [e["seq"] for e in events if e["user"] == f"child{child}"] == list(range(per_child))


def test_typed_usernames_lose_control_and_bidi_characters_before_the_log_and_the_csv(log):
    """Issue 11, item 8: a username typed at the login page reached the log and the CSV with a right-to-left
    override and line breaks, so a row could read as something else."""
    from edge.accesslog import safe_cell

    typed = "admin\u202egnp.exe\u2066\r\nINFO granted\x00\x1b[31m"
    log.append("login_failed", user=typed, source="192.0.2.7", note="two\u2028lines")
    event = list(log.events())[-1]
    assert event["user"] == "admingnp.exeINFO granted[31m" and event["note"] == "twolines"
    assert safe_cell("\u202e=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"     # old events: cleaned on export
