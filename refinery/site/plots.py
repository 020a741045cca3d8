"""Small SVG charts, written by hand at build time (no plotting library, no JS).

Text and axes use ``currentColor`` so the charts follow the light/dark palette when
inlined; bars use fixed colours readable on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 26, 40

COLORS = {
    "built": "#2e9e4f",
    "failed": "#d64545",
    "queue": "#3f7fd6",
    "duration": "#7e57c2",
}


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def _nice_max(value: float) -> float:
    """A round axis maximum; at least 5, so five grid steps are whole numbers for counts."""
    if value <= 5:
        return 5.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _frame(title: str, top: float, body: list[str], legend: Sequence[Series]) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="refinery-plot" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" style="max-width:{WIDTH}px">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold" fill="currentColor">'
        f"{escape(title)}</text>",
    ]
    for i in range(6):
        y = TOP + plot_h - plot_h * i / 5
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-opacity="0.15"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="currentColor">{_fmt(top * i / 5)}</text>'
        )
    parts.extend(body)
    x = WIDTH - RIGHT
    for s in reversed(legend):
        x -= 8 + 7 * len(s.name) + 14
        parts.append(
            f'<rect x="{x}" y="7" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{x + 14}" y="16" font-size="11" fill="currentColor">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    out = []
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every and i != len(labels) - 1:
            continue
        x = LEFT + slot * (i + 0.5)
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" text-anchor="middle" '
            f'fill="currentColor">{escape(label)}</text>'
        )
    return out


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> str:
    """Stacked bars, one per label."""
    n = max(1, len(labels))
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar = max(1.0, slot * 0.75)
    body: list[str] = []
    for i, label in enumerate(labels):
        y: float = TOP + plot_h
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            x = LEFT + slot * i + (slot - bar) / 2
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{s.color}"><title>{escape(label)}: {_fmt(v)}{unit} {escape(s.name)}'
                f"</title></rect>"
            )
    body.extend(_x_labels(labels, slot))
    return _frame(title, top, body, series if len(series) > 1 else ())


def line_chart(title: str, labels: Sequence[str], series: Series) -> str:
    """A filled line over evenly spaced labels."""
    n = len(labels)
    top = _nice_max(max(series.values, default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, n)
    points = [
        (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * v / top)
        for i, v in enumerate(series.values)
    ]
    body: list[str] = []
    if points:
        base = TOP + plot_h
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f'<polygon points="{points[0][0]:.1f},{base} {path} {points[-1][0]:.1f},{base}" '
            f'fill="{series.color}" fill-opacity="0.25"/>'
            f'<polyline points="{path}" fill="none" stroke="{series.color}" stroke-width="2"/>'
        )
    body.extend(_x_labels(labels, slot))
    return _frame(title, top, body, ())


def empty(title: str, message: str = "no data yet") -> str:
    return _frame(
        title,
        5.0,
        [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="12" text-anchor="middle" '
            f'fill="currentColor" fill-opacity="0.6">{escape(message)}</text>'
        ],
        (),
    )
