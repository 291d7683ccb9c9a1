"""Metric charts as inline SVG: a few lines of our own instead of a charting library in the
browser (the console loads nothing from elsewhere) or matplotlib per request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["bars", "lines"]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def lines(title: str, series: Mapping[str, Sequence[tuple[float, float]]], width: int = 560) -> str:
    """An SVG line chart: one line per ``series`` name (points (step, value), in step
    order), with axis ranges, a legend, and every point's value in a tooltip. One point
    alone is drawn as a dot."""
    height, left, right, top, bottom = 220, 56, 12, 24, 44
    points = [p for s in series.values() for p in s]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{left}" y="60">no points</text></svg>')
        return "".join(parts)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - abs(y0) * 0.1 - 1e-9, y1 + abs(y1) * 0.1 + 1e-9
    w, h = width - left - right, height - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * w, top + (1 - (y - y0) / (y1 - y0)) * h

    parts.append(
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" class="plot"/>'
        f'<text x="{left - 4}" y="{top + 10}" class="tick" text-anchor="end">{_fmt(y1)}</text>'
        f'<text x="{left - 4}" y="{top + h}" class="tick" text-anchor="end">{_fmt(y0)}</text>'
        f'<text x="{left}" y="{top + h + 14}" class="tick">{_fmt(x0)}</text>'
        f'<text x="{left + w}" y="{top + h + 14}" class="tick" text-anchor="end">'
        f"{_fmt(x1)}</text>"
        f'<text x="{left + w / 2}" y="{top + h + 14}" class="tick" text-anchor="middle">'
        "step</text>"
    )
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [px(x, y) for x, y in pts]
        if len(coords) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline class="line" data-series="{escape(name)}" points="{d}" '
                f'stroke="{colour}" fill="none"/>'
            )
        for (x, y), (sx, sy) in zip(pts, coords, strict=True):
            parts.append(
                f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)} step {_fmt(x)}: {_fmt(y)}</title></circle>"
            )
        ly = top + h + 30
        lx = left + i * 150
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(name[:20])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars(title: str, values: Mapping[str, float], marked: Sequence[str] = ()) -> str:
    """An SVG horizontal bar chart of ``values`` (label -> value >= 0); ``marked`` labels
    are drawn in the alert colour."""
    row, left, width = 18, 170, 560
    height = 30 + row * max(len(values), 1)
    top = max(values.values(), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}">',
        f'<text x="4" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(values.items()):
        y = 26 + i * row
        w = max(1.0, (width - left - 60) * value / top)
        cls = "bar alert" if label in marked else "bar"
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" class="tick" text-anchor="end">'
            f"{escape(label[:26])}</text>"
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 4}" class="{cls}">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 12}" class="tick">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
