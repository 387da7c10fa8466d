"""Charts as inline SVG, drawn on the server: no JavaScript, and only presentation attributes (no ``style``),
so the page's strict Content-Security-Policy (``script-src 'none'; style-src 'self'``) holds.

Every chart scales with its container (``viewBox`` and ``width="100%"``), names itself for screen readers
(``role="img"`` and ``<title>``), and marks its data (``data-outcome``, ``data-count``), so a test can read
what was drawn.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

COLOURS = {"grant": "#1a7f37", "deny": "#c62828", "unknown": "#9a6700", "spoof": "#7b1fa2", "lockout": "#455a64",
           "refusal": "#c62828", "line": "#1f6feb", "axis": "#98a2b3", "text": "#475467", "mark": "#1d2330"}
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _open(width: int, height: int, title: str, cls: str) -> list[str]:
    return [f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
            f"<title>{escape(title)}</title>"]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _text(x: float, y: float, text: str, *, anchor: str = "start", colour: str = COLOURS["text"]) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" {FONT}>{escape(text)}</text>'


def stacked_bars(starts: list[float], counts: dict[str, list[int]], *, seconds: float, title: str,
                 width: int = 640, height: int = 200) -> str:
    """Bars per time bucket, one colour per outcome stacked bottom up, with a legend and a count axis."""
    left, right, top, bottom = 34, 8, 22, 22
    n = max(1, len(starts))
    totals = [sum(counts[k][i] for k in counts) for i in range(len(starts))]
    peak = _nice_max(max(totals, default=0))
    plot_w, plot_h = width - left - right, height - top - bottom
    bar_w = plot_w / n
    out = _open(width, height, title, "bars")
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{COLOURS["axis"]}" '
                   f'stroke-width="0.5"/>')
        out.append(_text(left - 4, y + 4, f"{peak * frac:g}", anchor="end"))
    for i, start in enumerate(starts):
        x = left + i * bar_w
        y = top + plot_h
        for outcome, values in counts.items():
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            out.append(f'<rect data-outcome="{outcome}" data-count="{value}" x="{x + bar_w * 0.1:.1f}" y="{y:.1f}" '
                       f'width="{bar_w * 0.8:.1f}" height="{h:.1f}" fill="{COLOURS.get(outcome, "#888")}">'
                       f'<title>{escape(_bucket_label(start, seconds, long=True))}: {value} {outcome}</title></rect>')
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        out.append(_text(left + (i + 0.5) * bar_w, height - 6, _bucket_label(starts[i], seconds), anchor="middle"))
    x = left
    for outcome in counts:
        total = sum(counts[outcome])
        out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{COLOURS.get(outcome, "#888")}"/>')
        label = f"{outcome} {total}"
        out.append(f'<text class="legend" data-outcome="{outcome}" data-total="{total}" x="{x + 14}" y="15" '
                   f'fill="{COLOURS["text"]}" {FONT}>{escape(label)}</text>')
        x += 28 + 7 * len(label)
    out.append("</svg>")
    return "".join(out)


def _bucket_label(start: float, seconds: float, *, long: bool = False) -> str:
    when = dt.datetime.fromtimestamp(start)
    if seconds >= 86400:
        return when.strftime("%Y-%m-%d" if long else "%d %b")
    return when.strftime("%Y-%m-%d %H:00" if long else "%H:00")


def mirrored_histograms(edges: list[float], grants: list[int], refusals: list[int], *, threshold: float | None,
                        margin: float | None, title: str, width: int = 640, height: int = 240) -> str:
    """Grants' similarities as bars upwards, refusals' downwards, on one similarity axis; the threshold as a
    solid line and one margin either side of it as dashed lines (scores there are narrow passes or near misses)."""
    left, right, top, bottom = 34, 8, 22, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    mid = top + plot_h / 2
    lo, hi = edges[0], edges[-1]
    peak = _nice_max(max(grants + refusals, default=0))
    out = _open(width, height, title, "histogram")

    def x_of(value: float) -> float:
        return left + plot_w * (value - lo) / (hi - lo)

    out.append(f'<line x1="{left}" y1="{mid:.1f}" x2="{width - right}" y2="{mid:.1f}" stroke="{COLOURS["axis"]}"/>')
    out.append(_text(left - 4, top + 8, f"{peak:g}", anchor="end"))
    out.append(_text(left - 4, top + plot_h, f"{peak:g}", anchor="end"))
    for series, values, sign in (("grant", grants, -1), ("refusal", refusals, 1)):
        for i, value in enumerate(values):
            if not value:
                continue
            x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
            h = (plot_h / 2) * value / peak
            y = mid - h if sign < 0 else mid
            out.append(f'<rect data-outcome="{series}" data-count="{value}" x="{x0 + 0.5:.1f}" y="{y:.1f}" '
                       f'width="{max(x1 - x0 - 1, 0.5):.1f}" height="{h:.1f}" fill="{COLOURS[series]}">'
                       f'<title>{value} {series}{"s" if value != 1 else ""} with similarity {edges[i]:.2f} to '
                       f'{edges[i + 1]:.2f}</title></rect>')
    for tick in _ticks(lo, hi):
        out.append(_text(x_of(tick), height - 6, f"{tick:.1f}", anchor="middle"))
    if threshold is not None and lo <= threshold <= hi:
        x = x_of(threshold)
        out.append(f'<line class="threshold" data-value="{threshold:.3f}" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                   f'y2="{top + plot_h}" stroke="{COLOURS["mark"]}" stroke-width="1.5"/>')
        out.append(_text(x + 3, top + 4, f"threshold {threshold:.3f}"))
        if margin:
            for edge in (threshold - margin, threshold + margin):
                if lo <= edge <= hi:
                    xe = x_of(edge)
                    out.append(f'<line class="margin" data-value="{edge:.3f}" x1="{xe:.1f}" y1="{top}" '
                               f'x2="{xe:.1f}" y2="{top + plot_h}" stroke="{COLOURS["mark"]}" stroke-width="1" '
                               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{width - right}" y="{top + 10}" text-anchor="end" fill="{COLOURS["grant"]}" {FONT}>'
               f'grants {sum(grants)}</text>')
    out.append(f'<text x="{width - right}" y="{top + plot_h - 2}" text-anchor="end" fill="{COLOURS["refusal"]}" '
               f'{FONT}>refusals {sum(refusals)}</text>')
    out.append("</svg>")
    return "".join(out)


def _ticks(lo: float, hi: float) -> list[float]:
    first = math.ceil(lo * 5) / 5
    return [round(first + 0.2 * i, 1) for i in range(int((hi - first) / 0.2 + 1e-9) + 1)]


def line_chart(xs: list[float], ys: list[float], *, mark_x: float | None, title: str, x_label: str,
               y_label: str, width: int = 640, height: int = 180) -> str:
    """One line (y over x) with a vertical mark (the current threshold)."""
    left, right, top, bottom = 34, 8, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max(ys, default=0))
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (hi - lo) or 1.0
    out = _open(width, height, title, "line")

    def point(x: float, y: float) -> tuple[float, float]:
        return left + plot_w * (x - lo) / span, top + plot_h * (1 - y / peak)

    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
               f'stroke="{COLOURS["axis"]}"/>')
    out.append(_text(left - 4, top + 8, f"{peak:g}", anchor="end"))
    out.append(_text(left - 4, top + plot_h, "0", anchor="end"))
    if xs:
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in (point(x, y) for x, y in zip(xs, ys)))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2"/>')
        for x, y in zip(xs, ys):
            px, py = point(x, y)
            out.append(f'<circle data-x="{x:.3f}" data-count="{y:g}" cx="{px:.1f}" cy="{py:.1f}" r="2.5" '
                       f'fill="{COLOURS["line"]}"><title>{x_label} {x:.2f}: {y:g}</title></circle>')
        for x in xs[:: max(1, len(xs) // 6)]:
            out.append(_text(point(x, 0)[0], height - 14, f"{x:.2f}", anchor="middle"))
    if mark_x is not None and xs and lo <= mark_x <= hi:
        px = point(mark_x, 0)[0]
        out.append(f'<line class="threshold" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h}" '
                   f'stroke="{COLOURS["mark"]}" stroke-width="1.5"/>')
    out.append(_text(left + plot_w / 2, height - 2, x_label, anchor="middle"))
    out.append(_text(left + 4, top - 6, y_label))
    out.append("</svg>")
    return "".join(out)


def sparkline(values: list[float | None], *, title: str, width: int = 240, height: int = 40,
              colour: str = COLOURS["line"], bars: bool = False) -> str:
    """A small trend line (or bars, for counts); gaps (None) where nothing was measured; the peak labelled."""
    known = [v for v in values if v is not None]
    peak = max(known, default=0.0)
    top_value = peak if peak > 0 else 1.0
    n = max(1, len(values))
    step = width / n
    out = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg" data-peak="{peak:g}" '
           f'data-total="{sum(known):g}"><title>{escape(title)}</title>']
    if bars:
        for i, v in enumerate(values):
            if v:
                h = (height - 2) * v / top_value
                out.append(f'<rect x="{i * step:.1f}" y="{height - h:.1f}" width="{max(step - 0.5, 0.5):.1f}" '
                           f'height="{h:.1f}" fill="{colour}"/>')
    else:
        run: list[str] = []
        for i, v in enumerate(values + [None]):
            if v is None:
                if len(run) > 1:
                    out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                               f'stroke-width="1.5"/>')
                elif len(run) == 1:
                    x, y = run[0].split(",")
                    out.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{colour}"/>')
                run = []
                continue
            run.append(f"{(i + 0.5) * step:.1f},{height - 1 - (height - 2) * v / top_value:.1f}")
    out.append(f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="{COLOURS["axis"]}" '
               f'stroke-width="0.5"/>')
    out.append("</svg>")
    return "".join(out)
