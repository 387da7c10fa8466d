"""Server-drawn SVG charts: well-formed, no style attributes or scripts (the CSP forbids them), the data they
were given readable from the drawing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from edge.web import svg

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    assert "style=" not in text and "<script" not in text and "<style" not in text
    return ET.fromstring(text)


def counts(root: ET.Element, outcome: str) -> list[int]:
    return [int(r.get("data-count")) for r in root.iter(NS + "rect") if r.get("data-outcome") == outcome]


def test_stacked_bars_draw_every_count_with_its_outcome_and_escape_text():
    starts = [1_764_000_000.0 + 3600 * i for i in range(4)]
    root = parse(svg.stacked_bars(starts, {"grant": [2, 0, 1, 0], "deny": [0, 3, 0, 0]}, seconds=3600,
                                  title="Attempts <per hour>"))
    assert counts(root, "grant") == [2, 1] and counts(root, "deny") == [3]
    legend = {t.get("data-outcome"): int(t.get("data-total")) for t in root.iter(NS + "text")
              if t.get("class") == "legend"}
    assert legend == {"grant": 3, "deny": 3}
    assert root.find(NS + "title").text == "Attempts <per hour>"
    bars = [r for r in root.iter(NS + "rect") if r.get("data-outcome")]
    heights = {int(r.get("data-count")): float(r.get("height")) for r in bars}
    assert heights[2] == 2 * heights[1] and heights[3] > heights[2]   # bar height proportional to the count


def test_histograms_mark_threshold_and_margin():
    edges = [i / 10 for i in range(-2, 11)]
    grants = [0] * 12
    grants[10] = 4
    refusals = [0] * 12
    refusals[3] = 2
    root = parse(svg.mirrored_histograms(edges, grants, refusals, threshold=0.62, margin=0.1, title="t"))
    assert counts(root, "grant") == [4] and counts(root, "refusal") == [2]
    lines = {l.get("class"): [] for l in root.iter(NS + "line")}
    for line in root.iter(NS + "line"):
        lines[line.get("class")].append(float(line.get("data-value") or 0))
    assert lines["threshold"] == [0.62] and lines["margin"] == [0.52, 0.72]


def test_sparklines_and_line_chart_keep_gaps_and_values():
    root = parse(svg.sparkline([1.0, None, 3.0, 2.0], title="fps"))
    assert root.get("data-peak") == "3" and len(list(root.iter(NS + "polyline"))) == 1
    assert len(list(root.iter(NS + "circle"))) == 1                       # the lone value before the gap
    bars = parse(svg.sparkline([0, 2, 0, 1], title="relay", bars=True))
    assert bars.get("data-total") == "3" and len(list(bars.iter(NS + "rect"))) == 2
    line = parse(svg.line_chart([0.5, 0.6, 0.7], [3, 0, 2], mark_x=0.6, title="what if", x_label="threshold",
                                y_label="changed"))
    assert [c.get("data-count") for c in line.iter(NS + "circle")] == ["3", "0", "2"]
