"""The home page's charts, drawn on the server as inline SVG (no JavaScript, no chart library)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from paygate.services.dashboard import Day

from ..formatting import money

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 54, 22, 14, 30
STATUS_ORDER = ("success", "failed", "pending")  # bottom to top


def nice_ceiling(value: float, steps: int = 4) -> tuple[float, float]:
    """An axis maximum >= value that splits into ``steps`` round whole steps; (maximum, step)."""
    if value <= 0:
        return float(steps), 1.0
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * steps >= value:
            break
    step = max(step, 1.0)
    return step * steps, step


def compact_rupees(paise: float) -> str:
    """Axis labels in Indian units: ₹950, ₹12.5K, ₹3.2L, ₹1.1Cr."""
    rupees = paise / 100
    for limit, suffix in ((1e7, "Cr"), (1e5, "L"), (1e3, "K")):
        if rupees >= limit:
            text = f"{rupees / limit:.1f}".rstrip("0").rstrip(".")
            return f"₹{text}{suffix}"
    return f"₹{rupees:.0f}"


def _frame(title: str, ticks: list[tuple[float, str]], days: Sequence[Day]) -> list[str]:
    """The SVG head, horizontal grid lines with y labels, and the day labels."""
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction, label in ticks:
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    # Up to 14 days: every 2nd label on a laptop, every 4th on a phone (CSS). Longer: about
    # seven labels, always shown. Counted back from the last day.
    every = max(2, math.ceil(len(days) / 7)) if len(days) > 14 else 2
    for index, day in enumerate(days):
        back = len(days) - 1 - index
        if back % every:
            continue
        step = back % 4 if len(days) <= 14 else 0
        x = LEFT + slot * (index + 0.5)
        parts.append(
            f'<text class="axis x-label x-step-{step}" x="{x:.1f}" y="{HEIGHT - 10}" '
            f'text-anchor="middle">{day.day.strftime("%d %b")}</text>'
        )
    return parts


def payments_chart(days: Sequence[Day], period: str = "last 14 days") -> Markup:
    """Stacked bars: payments per day by status."""
    peak = max((day.total for day in days), default=0)
    top, step = nice_ceiling(peak)
    ticks = [(n * step / top, f"{n * step:g}") for n in range(int(round(top / step)) + 1)]
    parts = _frame(f"Payments per day by status, {period}", ticks, days)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bar = slot * 0.62
    for index, day in enumerate(days):
        x = LEFT + slot * index + (slot - bar) / 2
        y = TOP + plot_h
        label = (
            f"{day.day.strftime('%d %b %Y')}: {day.total} payments "
            f"({day.success} succeeded, {day.failed} failed, {day.pending} pending)"
        )
        parts.append(f'<g class="day"><title>{escape(label)}</title>')
        if day.total == 0:
            parts.append(
                f'<rect class="bar-empty" x="{x:.1f}" y="{y - 1:.1f}" width="{bar:.1f}" height="1"/>'
            )
        for status in STATUS_ORDER:
            count = getattr(day, status)
            if not count:
                continue
            height = plot_h * count / top
            y -= height
            parts.append(
                f'<rect class="bar-{status}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" data-status="{status}" data-count="{count}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def volume_chart(days: Sequence[Day], period: str = "last 14 days") -> Markup:
    """An area and line: successful volume per day."""
    peak = max((day.volume for day in days), default=0)
    top, step = nice_ceiling(peak / 100)  # in rupees, so the ticks are round rupee amounts
    top, step = top * 100, step * 100
    ticks = [(n * step / top, compact_rupees(n * step)) for n in range(int(round(top / step)) + 1)]
    parts = _frame(f"Successful volume per day, {period}", ticks, days)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    points = [
        (LEFT + slot * (index + 0.5), TOP + plot_h * (1 - day.volume / top))
        for index, day in enumerate(days)
    ]
    if points:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        base = TOP + plot_h
        area = f"{points[0][0]:.1f},{base:.1f} {line} {points[-1][0]:.1f},{base:.1f}"
        parts.append(f'<polygon class="area" points="{area}"/>')
        parts.append(f'<polyline class="line" points="{line}"/>')
    for (x, y), day in zip(points, days, strict=True):
        label = f"{day.day.strftime('%d %b %Y')}: {money(day.volume)} successful"
        parts.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5" data-volume="{day.volume}">'
            f"<title>{escape(label)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
