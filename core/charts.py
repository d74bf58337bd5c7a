"""Chart geometry for the dashboard's server-drawn SVG charts (``core/templates/_charts.html``).

Charts are drawn on the server: no script, nothing fetched from elsewhere, nothing the strict CSP
must allow (SVG presentation attributes are not styles). Python does the arithmetic; the
macros only place what it computed, so a template never does maths on data. Every chart also
carries its numbers as a table for screen readers and for people who would rather read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 28  # room for the value axis and the labels


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float


@dataclass(frozen=True)
class Line:
    name: str
    points: str  # "x,y x,y ..." for <polyline>
    index: int  # which colour


@dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    ticks: list[Tick]
    bars: list[Bar]
    lines: list[Line]
    labels: list[tuple[float, str]]  # x positions of the category labels shown (thinned out)
    baseline: float
    left: int


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above ``value`` (1 for nothing), so the axis reads well."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def format_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _ticks(top: float, plot_height: float) -> list[Tick]:
    return [Tick(y=TOP + plot_height * (1 - i / 4), label=format_number(top * i / 4)) for i in range(5)]


def _labels(xs: list[float], names: list[str], most: int = 8) -> list[tuple[float, str]]:
    every = max(1, math.ceil(len(names) / most))
    return [(x, n) for i, (x, n) in enumerate(zip(xs, names)) if i % every == 0]


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def bars(points: list[tuple[str, float]]) -> Geometry:
    """One bar per (label, value); negative, missing or non-finite values draw as zero."""
    values = [_number(v) for _label, v in points]
    top = nice_max(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(points))
    width = max(1.0, slot * 0.8)
    drawn = []
    for i, ((label, _raw), value) in enumerate(zip(points, values)):
        h = plot_h * value / top
        drawn.append(Bar(x=round(LEFT + i * slot + (slot - width) / 2, 2), y=round(TOP + plot_h - h, 2),
                         width=round(width, 2), height=round(h, 2), label=str(label), value=value))
    centres = [b.x + b.width / 2 for b in drawn]
    return Geometry(WIDTH, HEIGHT, _ticks(top, plot_h), drawn, [], _labels(centres, [b.label for b in drawn]),
                    TOP + plot_h, LEFT)


def lines(labels: list[str], series: list[tuple[str, list[float]]]) -> Geometry:
    """One polyline per (name, values), the values aligned with ``labels``."""
    cleaned = [(str(name), [_number(v) for v in values]) for name, values in series]
    top = nice_max(max((v for _n, vs in cleaned for v in vs), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)
    xs = [LEFT + i * step for i in range(len(labels))]
    drawn = [Line(name=name, index=i % 4,
                  points=" ".join(f"{x:.1f},{TOP + plot_h - plot_h * v / top:.1f}" for x, v in zip(xs, values)))
             for i, (name, values) in enumerate(cleaned)]
    return Geometry(WIDTH, HEIGHT, _ticks(top, plot_h), [], drawn, _labels(xs, [str(x) for x in labels]),
                    TOP + plot_h, LEFT)
