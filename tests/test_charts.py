"""Server-drawn SVG charts (core/charts.py, core/templates/_charts.html)."""

from __future__ import annotations

import re
from pathlib import Path

from core import charts
from core.templating import Templates


def render(source: str, **context) -> str:
    templates = Templates(Path("/nonexistent"), [])
    return templates.env().from_string(source).render(_=lambda s: s, **context)


def test_bars_are_proportional_to_their_values_on_a_round_axis():
    g = charts.bars([("mon", 30), ("tue", 60), ("wed", 0)])
    assert [t.label for t in g.ticks] == ["0", "25", "50", "75", "100"]  # 60 rounds up to 100
    heights = [b.height for b in g.bars]
    assert heights[2] == 0 and abs(heights[1] / heights[0] - 2) < 0.01
    assert all(b.y + b.height == g.baseline for b in g.bars)


def test_bad_values_draw_as_zero_and_nothing_breaks():
    g = charts.bars([("a", float("nan")), ("b", -5), ("c", None), ("d", "x"), ("e", float("inf"))])
    assert all(b.height == 0 for b in g.bars)
    assert charts.bars([]).bars == [] and charts.lines([], []).lines == []


def test_many_labels_are_thinned_so_they_stay_readable():
    g = charts.lines([f"d{i}" for i in range(90)], [("views", list(range(90)))])
    assert len(g.labels) <= 8 and g.labels[0][1] == "d0"
    assert len(g.lines[0].points.split()) == 90


def test_the_macros_draw_an_accessible_svg_and_escape_labels():
    html = render('{% from "_charts.html" import bar_chart, line_chart with context %}'
                  '{{ bar_chart("Sent per day", points, unit="SMS") }}{{ line_chart("Views", labels, series) }}',
                  points=[("<script>x</script>", 3), ("b", 7)], labels=["1", "2"],
                  series=[("a <b>", [1, 2]), ("c", [2, 1])])
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &lt;b&gt;" in html
    assert html.count('role="img"') == 2 and 'aria-label="Sent per day"' in html
    assert len(re.findall(r'<rect class="chart-bar"', html)) == 2
    assert "<td>7 SMS</td>" in html  # the numbers as a table too
    assert 'style=' not in html  # nothing the strict CSP would block
