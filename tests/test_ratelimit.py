"""The sliding-window rate limit behind signups and remote unlocks (issue 11, items 6 and 8)."""

from __future__ import annotations

import pytest

from edge.ratelimit import RateLimit


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def test_attempts_beyond_the_window_wait_until_the_oldest_leaves_it():
    clock = Clock()
    limit = RateLimit(events=3, seconds=60, clock=clock)
    assert [limit.take("a") for _ in range(3)] == [0, 0, 0]
    assert limit.take("a") == pytest.approx(60)
    assert limit.take("b") == 0                         # another key is not affected
    clock.now += 30
    assert limit.take("a") == pytest.approx(30)         # refused attempts are not counted
    clock.now += 30
    assert limit.take("a") == 0


def test_memory_is_bounded():
    clock = Clock()
    limit = RateLimit(events=1, seconds=60, max_keys=50, clock=clock)
    for i in range(500):
        limit.take(f"192.0.2.{i}")
        clock.now += 0.01
    assert len(limit._times) <= 50
