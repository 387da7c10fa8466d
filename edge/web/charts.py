"""The charts page and the dashboard's health card, assembled from the access log index and the daemon's health
buckets: numbers from :mod:`edge.eventstats`, drawings from :mod:`edge.web.svg`.

Drawn charts are cached per index view (the index hands out a new view only when the log changed), so a second
look at the same page costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from .. import eventstats
from ..eventindex import Events
from ..health import HealthSeries
from . import svg

PERIODS = {1: "last 24 hours", 7: "last 7 days", 30: "last 30 days", 365: "last year"}
DEFAULT_PERIOD = 30
WHAT_IF_LAST = 1000
_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ChartPage:
    hourly: str
    daily: str
    histogram: str
    what_if_chart: str
    what_if: eventstats.WhatIf
    users: list[eventstats.UserStats]
    attempts: int


def _cached(key: tuple, make):
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = make()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return value


def chart_page(events: Events, *, now: float, days: int, threshold: float, margin: float,
               what_if_threshold: float, last: int = WHAT_IF_LAST) -> ChartPage:
    """Everything the charts page draws, for a period of ``days`` ending ``now``."""
    newest = float(events.time[-1]) if len(events) else 0.0
    key = (id(events), len(events), newest, int(now // 60), days, threshold, margin, what_if_threshold, last)
    return _cached(key, lambda: _chart_page(events, now=now, days=days, threshold=threshold, margin=margin,
                                            what_if_threshold=what_if_threshold, last=last))


def _chart_page(events: Events, *, now: float, days: int, threshold: float, margin: float,
                what_if_threshold: float, last: int) -> ChartPage:
    since = now - days * 86400
    hours = eventstats.attempts(events, until=now, seconds=3600, count=24)
    per_day = eventstats.attempts(events, until=now, seconds=86400, count=max(days, 7) if days > 1 else 7)
    hist = eventstats.similarity_histograms(events, since=since)
    steps = np.round(np.arange(threshold - 0.15, threshold + 0.1001, 0.01), 3)
    curve = eventstats.what_if_curve(events, current=threshold, thresholds=steps, last=last)
    chosen = eventstats.what_if(events, current=threshold, threshold=what_if_threshold, last=last)
    return ChartPage(
        hourly=svg.stacked_bars(hours.starts, hours.counts, seconds=3600,
                                title="Attempts per hour over the last 24 hours, by outcome"),
        daily=svg.stacked_bars(per_day.starts, per_day.counts, seconds=86400,
                               title=f"Attempts per day over the last {len(per_day.starts)} days, by outcome"),
        histogram=svg.mirrored_histograms(hist.edges, hist.grants, hist.refusals, threshold=threshold, margin=margin,
                                          title=f"Similarity of grants (up) and refusals (down), {PERIODS[days]}"),
        what_if_chart=svg.line_chart([w.threshold for w in curve], [w.changed for w in curve], mark_x=threshold,
                                     title=f"Attempts of the last {chosen.attempts} that change outcome, "
                                           "by threshold",
                                     x_label="threshold", y_label="attempts that change outcome"),
        what_if=chosen, users=eventstats.per_user(events, since=since), attempts=per_day.total())


def name_people(users: list[eventstats.UserStats], accounts: Mapping[str, str]) -> list[eventstats.UserStats]:
    """The per-person rows under each account's current name (``accounts``: user id -> username), so a renamed
    person reads as one row under the new name; a removed account's row says so, so it is not taken for a newer
    account with the same name."""
    return [s if s.user_id is None else
            replace(s, user=accounts[s.user_id] if s.user_id in accounts else f"{s.user} (removed)")
            for s in users]


@dataclass(frozen=True)
class HealthCard:
    name: str
    now: str
    peak: str
    chart: str


def health_cards(series: HealthSeries) -> list[HealthCard]:
    """Sparklines of the last 24 hours: fps and ms per frame as lines, the counters as bars."""
    def last(values):
        known = [v for v in values if v is not None]
        return known[-1] if known else None

    def fmt(value, unit):
        return "—" if value is None else f"{value:g} {unit}"

    cards = []
    for name, values, unit in (("Frames per second", series.fps, "fps"),
                               ("Recognition time per frame", series.ms_per_frame, "ms")):
        known = [v for v in values if v is not None]
        cards.append(HealthCard(name, f"now {fmt(last(values), unit)}", f"peak {fmt(max(known, default=None), unit)}",
                                svg.sparkline(values, title=f"{name} over the last 24 hours")))
    for name, counts in (("Camera restarts", series.camera_restarts), ("Relay operations", series.relay_operations),
                         ("Held-open alarms", series.held_open_alarms)):
        cards.append(HealthCard(name, f"{sum(counts)} in 24 h", "",
                                svg.sparkline([float(v) for v in counts], title=f"{name} over the last 24 hours",
                                              bars=True, colour=svg.COLOURS["deny" if "alarm" in name else "line"])))
    return cards
