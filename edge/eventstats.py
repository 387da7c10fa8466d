"""Numbers behind the admin page's charts, computed from the access log index (:class:`edge.eventindex.Events`).

Plain functions over numpy columns: no I/O, no decryption, so a year of events costs milliseconds. An
*attempt* is one decision at the door: grant, deny, unknown or spoof (lockouts are counted with refusals).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .eventindex import Events

OUTCOMES = ("grant", "deny", "unknown", "spoof")
REFUSALS = ("deny", "unknown", "spoof", "lockout")


@dataclass(frozen=True)
class Buckets:
    """Counts per time bucket, stacked by outcome: ``counts[outcome][i]`` for the bucket starting ``starts[i]``."""

    starts: list[float]
    counts: dict[str, list[int]]
    seconds: float

    def total(self) -> int:
        return int(sum(sum(v) for v in self.counts.values()))


def bucket_edges(until: float, seconds: float, count: int) -> list[float]:
    """``count + 1`` bucket edges, the last bucket holding ``until``; hours, or local calendar days (so a
    daylight-saving change does not shift every bucket by an hour)."""
    when = dt.datetime.fromtimestamp(until).astimezone()
    if seconds >= 86400:
        today = when.date()
        days = [today - dt.timedelta(days=count - 1 - i) for i in range(count + 1)]
        return [dt.datetime.combine(d, dt.time.min).astimezone().timestamp() for d in days]
    last = when.replace(minute=0, second=0, microsecond=0).timestamp()
    return [last - seconds * (count - 1 - i) for i in range(count + 1)]


def attempts(events: Events, *, until: float, seconds: float, count: int, user: str | None = None) -> Buckets:
    """Attempts per bucket (hour: ``seconds=3600``, day: ``86400``) stacked by outcome; lockouts count as
    unknown (a lockout is a refusal of a face that was not let in)."""
    edges = np.asarray(bucket_edges(until, seconds, count))
    starts = [float(e) for e in edges[:-1]]
    positions = events.select(kinds=OUTCOMES + ("lockout",), user=user, since=edges[0], until=edges[-1])
    slot = np.searchsorted(edges, events.time[positions], "right") - 1
    kind = events.kind[positions]
    counts = {}
    for outcome in OUTCOMES:
        codes = [events.kind_code(outcome)] + ([events.kind_code("lockout")] if outcome == "unknown" else [])
        counts[outcome] = [int(v) for v in np.bincount(slot[np.isin(kind, codes)], minlength=count)[:count]]
    return Buckets(starts=starts, counts=counts, seconds=seconds)


@dataclass(frozen=True)
class Histograms:
    """Similarity of grants and of refusals in equal bins over [lo, hi]."""

    edges: list[float]
    grants: list[int]
    refusals: list[int]


def similarity_histograms(events: Events, *, since: float | None = None, until: float | None = None,
                          bins: int = 40, lo: float = -0.2, hi: float = 1.0) -> Histograms:
    edges = np.linspace(lo, hi, bins + 1)
    out = []
    for kinds in (("grant",), REFUSALS):
        positions = events.select(kinds=kinds, since=since, until=until)
        values = events.similarity[positions]
        values = np.clip(values[~np.isnan(values)], lo, hi)
        hist, _ = np.histogram(values, bins=edges)
        out.append([int(v) for v in hist])
    return Histograms(edges=[float(e) for e in edges], grants=out[0], refusals=out[1])


@dataclass(frozen=True)
class UserStats:
    user: str                         # the name on the person's newest event
    user_id: str | None               # None: events written before ids were logged, grouped by name
    grants: int
    refusals: int
    median_seconds: float | None      # first frame to unlock, over grants that recorded it

    @property
    def attempts(self) -> int:
        return self.grants + self.refusals

    @property
    def grant_rate(self) -> float:
        return self.grants / self.attempts if self.attempts else 0.0


def per_user(events: Events, *, since: float | None = None, until: float | None = None) -> list[UserStats]:
    """Grant rate and median first-frame-to-unlock time per person (refusals: denies and spoofs that named
    them), most attempts first. A person is a user id, so a renamed account stays one row and a new account
    with a removed one's name gets its own. Events logged before ids were recorded join the one id that logged
    the same name; when no id or several did, they are a row of their own, by name."""
    positions = events.select(kinds=("grant", "deny", "spoof"), since=since, until=until)
    positions = positions[events.user[positions] >= 0]
    names = events.user[positions]
    # One key per person: the id's code (>= 0), or for events without an id -2 - the name's code (< 0).
    person = np.where(events.uid[positions] >= 0, events.uid[positions], -2 - names)
    for name in np.unique(names[person < 0]):
        ids = np.unique(events.uid[(events.user == name) & (events.uid >= 0)])
        if len(ids) == 1:
            person[(person < 0) & (names == name)] = ids[0]
    grant = events.kind_code("grant")
    out = []
    for key in np.unique(person):
        mine = positions[person == key]
        granted = mine[events.kind[mine] == grant]
        seconds = events.seconds[granted]
        seconds = seconds[~np.isnan(seconds)]
        newest = mine[np.argmax(events.time[mine])]
        out.append(UserStats(user=events.users[events.user[newest]], user_id=events.uids[key] if key >= 0 else None,
                             grants=len(granted), refusals=len(mine) - len(granted),
                             median_seconds=float(np.median(seconds)) if len(seconds) else None))
    out.sort(key=lambda s: (-s.attempts, s.user, s.user_id or ""))
    return out


@dataclass(frozen=True)
class WhatIf:
    """Of the last ``attempts`` attempts, how many change outcome if the threshold were ``threshold`` instead of
    ``current``: grants whose similarity falls below it, refusals whose similarity reaches it (of which
    ``strangers`` were unknown faces). Votes over frames and the margin are left aside: it is the one-number view."""

    current: float
    threshold: float
    attempts: int
    grants_lost: int
    refusals_passing: int
    strangers: int

    @property
    def changed(self) -> int:
        return self.grants_lost + self.refusals_passing


def what_if(events: Events, *, current: float, threshold: float, last: int = 1000) -> WhatIf:
    return what_if_curve(events, current=current, thresholds=[threshold], last=last)[0]


def what_if_curve(events: Events, *, current: float, thresholds, last: int = 1000) -> list[WhatIf]:
    """:func:`what_if` for several thresholds over the same last ``last`` attempts."""
    positions = events.select(kinds=("grant",) + REFUSALS)[-last:] if last > 0 else np.zeros(0, np.int64)
    sims = events.similarity[positions]
    known = ~np.isnan(sims)
    positions, sims = positions[known], sims[known]
    is_grant = events.kind[positions] == events.kind_code("grant")
    is_unknown = np.isin(events.kind[positions], [events.kind_code("unknown"), events.kind_code("lockout")])
    refused_below = ~is_grant & (sims < current)
    out = []
    for threshold in thresholds:
        threshold = float(threshold)
        passing = refused_below & (sims >= threshold)
        out.append(WhatIf(current=current, threshold=threshold, attempts=len(positions),
                          grants_lost=int(np.sum(is_grant & (sims < threshold))),
                          refusals_passing=int(np.sum(passing)), strangers=int(np.sum(passing & is_unknown))))
    return out
