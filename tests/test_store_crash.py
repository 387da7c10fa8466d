"""SIGKILL at random moments: the database and the access log must survive every time.

A forked child writes in a loop and reports progress through a pipe only AFTER each commit or append has
returned; the parent kills it with SIGKILL a random delay after a random number of those reports (0 to a few:
the kill can land anywhere, and the rounds make progress however loaded the machine is) and checks what is on
disk. Forking (instead of starting a new interpreter) keeps each round at tens of milliseconds.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time

import numpy as np
import pytest

from edge.accesslog import AccessLog
from edge.keyrotation import rotate
from edge.keys import FileKeySource, KeyRing
from edge.errors import StoreError
from edge.store import Store

KILLS = 120
ROTATION_KILLS = 60


def _run_child_and_kill(body, delay: float, *, after_reports: int = 0, deadline: float = 60.0) -> list[str]:
    """Fork; the child runs ``body(report)`` until killed ``delay`` seconds after its ``after_reports``-th
    report (a fixed delay alone may see no progress at all on a busy machine). Returns the progress lines it
    reported."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            body(lambda text: os.write(write_fd, text.encode() + b"\n"))
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    give_up = time.monotonic() + deadline
    while b"".join(chunks).count(b"\n") < after_reports:
        ready, _, _ = select.select([read_fd], [], [], max(0.0, give_up - time.monotonic()))
        chunk = os.read(read_fd, 65536) if ready else b""
        if not chunk:                                   # the deadline passed, or the child died by itself
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            seen = b"".join(chunks).count(b"\n")
            raise AssertionError(f"the child reported {seen} of {after_reports} steps within {deadline:.0f} s")
        chunks.append(chunk)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    return b"".join(chunks).decode().split()


@pytest.fixture
def state(tmp_path):
    source = FileKeySource(tmp_path / "db.key")
    source.create()
    ring = KeyRing(source)
    Store.create(tmp_path / "edge-face.db", ring, bcrypt_rounds=4)
    return tmp_path


def _open(tmp_path):
    ring = KeyRing(FileKeySource(tmp_path / "db.key"))
    store = Store(tmp_path / "edge-face.db", ring, bcrypt_rounds=4, lock_timeout=5)
    log = AccessLog(tmp_path / "access.log", ring, max_bytes=4096, keep=1000)
    return store, log


def test_sigkill_while_writing_never_loses_a_committed_revision_or_event(state):
    rng = random.Random(1234)
    committed, appended = 1, 0  # what the parent knows for sure
    reported_users: set[str] = set()
    for round_no in range(KILLS):
        def writer(report):
            store, log = _open(state)
            seq = appended
            while True:
                user = store.add_user(username=f"user-{store.revision + 1}", status="active")
                report(f"U{store.revision}")
                store.add_template(user.id, np.random.default_rng(store.revision).normal(size=128),
                                   model_id="m", source="cli")
                report(f"C{store.revision}")
                seq += 1
                log.append("grant", user=user.username, similarity=0.9, decision="grant", source="camera", seq=seq)
                report(f"L{seq}")

        progress = _run_child_and_kill(writer, rng.uniform(0.0, 0.08), after_reports=rng.randint(0, 3))
        commits = [int(p[1:]) for p in progress if p[0] in "CU"]
        reported_users.update(f"user-{p[1:]}" for p in progress if p[0] == "U")
        appends = [int(p[1:]) for p in progress if p.startswith("L")]
        committed = max(commits, default=committed)
        appended = max(appends, default=appended)

        store, log = _open(state)  # must open: no exception allowed
        assert store.revision in (committed, committed + 1), (round_no, store.revision, committed)
        # Every user whose commit was reported is there (the name is the revision that created it).
        names = {u.username for u in store.users()}
        assert reported_users <= names, round_no
        assert all(int(n.split("-")[1]) <= store.revision for n in names)
        seqs = [e["seq"] for e in log.events()]
        assert seqs[:appended] == list(range(1, appended + 1)), round_no  # every reported event, in order
        assert len(seqs) in (appended, appended + 1)
        appended = len(seqs)  # an event written but not reported is on disk: the next child continues after it
        committed = store.revision
        store.close()
    assert committed > KILLS // 2  # the children really made progress


def test_sigkill_during_key_rotation_always_leaves_a_readable_database(state):
    rng = random.Random(99)
    store, log = _open(state)
    for i in range(5):
        u = store.add_user(username=f"person-{i}", status="active")
        store.add_template(u.id, np.ones(128), model_id="m", source="cli")
        log.append("enrol", user=u.username, seq=i)
    revision, users = store.revision, len(store.users())
    store.close()
    old_keys = set()
    for round_no in range(ROTATION_KILLS):
        old_keys.update(FileKeySource(state / "db.key").read_entries())

        def rotator(report):
            s, lg = _open(state)
            while True:
                rotate(s, lg)
                report("R")

        _run_child_and_kill(rotator, rng.uniform(0.0, 0.15), after_reports=rng.randint(0, 2))
        store, log = _open(state)  # opens with whichever keys the key file holds now
        assert store.revision == revision and len(store.users()) == users, round_no
        events = list(log.events())
        assert log.skipped == 0 and [e["seq"] for e in events] == list(range(5)), round_no
        store.close()
    assert len(old_keys) > 5  # rotations did complete between the kills
    # An uninterrupted rotation finishes the job: one key left, and no earlier key opens anything any more.
    store, log = _open(state)
    rotate(store, log)
    [key] = FileKeySource(state / "db.key").read_entries()
    for old in old_keys - {key}:
        with pytest.raises(StoreError):
            Store(state / "edge-face.db", KeyRing(keys=[old.encode()]))
        assert list(AccessLog(state / "access.log", KeyRing(keys=[old.encode()])).events()) == []
    assert [e["seq"] for e in log.events()] == list(range(5))
