"""The login throttle on a hand-driven clock: guessers slow down, the owner is never locked out (issue 11, item 3).

The same rules are exercised over the real server in test_web_server.py.
"""

from __future__ import annotations

import pytest

from edge.web.throttle import LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def throttle(clock, **options):
    return LoginThrottle(**{"max_failures": 3, "max_delay": 900, "base_delay": 30, "wide_failures": 12,
                            "clock": clock, **options})


def test_a_pair_gets_free_attempts_then_doubling_delays_up_to_the_cap():
    clock = Clock()
    t = throttle(clock)
    assert [t.failure("alice", "10.0.0.7") for _ in range(2)] == [0, 0]
    delays = []
    for _ in range(8):
        delays.append(t.failure("alice", "10.0.0.7"))
        clock.now += delays[-1]                         # the guesser waits exactly as long as told
    assert delays == [30, 60, 120, 240, 480, 900, 900, 900]
    assert t.wait("alice", "10.0.0.7") == pytest.approx(0)


def test_the_owner_from_a_clean_address_is_never_delayed():
    clock = Clock()
    t = throttle(clock)
    for _ in range(50):                                 # far beyond every threshold, from one address
        t.failure("alice", "10.0.0.7")
    assert t.wait("alice", "10.0.0.7") == 900
    assert t.wait("alice", "10.0.0.8") == 0             # alice at home: not locked out


def test_many_addresses_against_one_account_slow_only_the_failing_addresses():
    clock = Clock()
    t = throttle(clock)
    for i in range(20):                                 # a distributed guess: 2 tries each, under the pair limit
        t.failure("alice", f"10.0.1.{i}")
        t.failure("alice", f"10.0.1.{i}")
    assert t.wait("alice", "10.0.1.3") > 0              # the account-wide count reached the failing addresses
    assert t.wait("alice", "10.0.0.8") == 0             # a clean address still gets in


def test_one_address_spraying_many_accounts_is_slowed_except_for_pairs_that_logged_in_before():
    clock = Clock()
    t = throttle(clock)
    t.success("bob", "10.0.0.7")                        # bob behind the same NAT logged in earlier
    for i in range(12):
        t.failure(f"user{i}", "10.0.0.7")               # one try per account: no pair limit helps here
    assert t.wait("carol", "10.0.0.7") > 0              # a new account from the spraying address waits
    assert t.wait("bob", "10.0.0.7") == 0               # bob still gets in
    assert t.wait("carol", "10.0.0.8") == 0             # and nobody elsewhere is affected


def test_success_clears_the_pair_but_not_the_address_count():
    clock = Clock()
    t = throttle(clock, wide_failures=4)
    t.failure("mallory", "10.0.0.7")
    t.failure("alice", "10.0.0.7")
    t.failure("alice", "10.0.0.7")
    t.success("mallory", "10.0.0.7")                    # the guesser's own valid account
    assert t.failure("bob", "10.0.0.7") > 0             # the address reached 4 failures all the same
    assert t.wait("mallory", "10.0.0.7") == 0


def test_counts_are_forgotten_after_a_quiet_period():
    clock = Clock()
    t = throttle(clock, forget_seconds=3600)
    for _ in range(5):
        t.failure("alice", "10.0.0.7")
    clock.now += 3601
    assert t.failure("alice", "10.0.0.7") == 0          # counting starts again from one


def test_memory_is_bounded():
    clock = Clock()
    t = throttle(clock, max_keys=30)
    for i in range(200):
        t.failure(f"user{i}", f"10.0.{i}.1")
        t.success(f"user{i}", f"10.0.{i}.2")
    assert len(t._counts) <= 30 and len(t._trusted) <= 30
