"""Charts as inline SVG rendered on the server: no JavaScript, no CDN, printable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from measurements.models import DailyAdherence, StudyProtocol

W, H = 900, 280
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


def _scale(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a + (v - lo) * (b - a) / (hi - lo) if hi != lo else (a + b) / 2


def bp_trend_svg(
    readings: Sequence[tuple[dt.datetime, Decimal, Decimal]], protocol: StudyProtocol, tz: dt.tzinfo
) -> SafeString:
    """Systolic and diastolic over time, with the home threshold and crisis bands."""
    if not readings:
        return format_html('<p class="help">{}</p>', "No readings yet.")
    points = sorted(readings)
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    if t1 - t0 < 86400:
        t0, t1 = t0 - 43200, t1 + 43200
    top = max(200.0, max(float(s) for _t, s, _d in points) + 10)
    lo, hi = 40.0, top

    def x(t: dt.datetime) -> float:
        return round(_scale(t.timestamp(), t0, t1, LEFT, W - RIGHT), 1)

    def y(v: float) -> float:
        return round(_scale(v, lo, hi, H - BOTTOM, TOP), 1)

    parts: list[str] = []
    bands = (
        (protocol.home_systolic_threshold, protocol.crisis_systolic, "#fdebd0", "above home threshold"),
        (protocol.crisis_systolic, hi, "#f5b7b1", "crisis"),
    )
    for low, high, colour, label in bands:
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                LEFT, y(min(high, hi)), W - LEFT - RIGHT, max(0, y(low) - y(min(high, hi))), colour,
                f"Systolic {label} (≥ {low} mmHg)",
            )
        )  # fmt: skip
    for value, colour in (
        (protocol.home_systolic_threshold, "#b03a2e"),
        (protocol.home_diastolic_threshold, "#1f618d"),
    ):
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-dasharray="4 3" stroke-width="1"/>',
                LEFT, W - RIGHT, y(value), y(value), colour,
            )
        )  # fmt: skip
    tick = 20
    for v in range(int(lo), int(hi) + 1, tick):
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#555">{}</text>',
                LEFT, W - RIGHT, y(v), y(v), LEFT - 4, y(v) + 3, v,
            )
        )  # fmt: skip
    span_days = max(1, int((t1 - t0) / 86400))
    step = max(1, span_days // 8)
    first_day = dt.datetime.fromtimestamp(t0, tz).date()
    for i in range(0, span_days + 1, step):
        day = first_day + dt.timedelta(days=i)
        at = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
        if t0 <= at.timestamp() <= t1:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#555">{}</text>',
                    x(at), H - 8, day.strftime("%d %b"),
                )
            )  # fmt: skip
    # Systolic: solid line and round dots; diastolic: dashed line and squares (not colour alone).
    title = "<title>{} {}: {} mmHg</title>"
    dot = '<circle cx="{}" cy="{}" r="2.4" fill="{}">' + title + "</circle>"
    square = '<rect x="{}" y="{}" width="4.4" height="4.4" fill="{}" transform="translate(-2.2 -2.2)">'
    series = (
        (1, "#b03a2e", "systolic", "none", dot),
        (2, "#1f618d", "diastolic", "6 2", square + title + "</rect>"),
    )
    for index, colour, name, dashes, marker in series:
        line = " ".join(f"{x(p[0])},{y(float(p[index]))}" for p in points)
        parts.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="1.2" stroke-dasharray="{}"/>',
                line, colour, dashes,
            )
        )  # fmt: skip
        parts.append(
            format_html_join(
                "",
                marker,
                (
                    (
                        x(t),
                        y(float(v)),
                        colour,
                        t.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                        name,
                        f"{s:.0f}/{d:.0f}",
                    )
                    for t, s, d, v in ((p[0], p[1], p[2], p[index]) for p in points)
                ),
            )
        )
    legend = format_html(
        '<text x="{}" y="{}" font-size="11" fill="#b03a2e">● systolic</text>'
        '<text x="{}" y="{}" font-size="11" fill="#1f618d">■ diastolic (dashed)</text>',
        W - 220, TOP + 12, W - 140, TOP + 12,
    )  # fmt: skip
    systolic = [float(p[1]) for p in points]
    diastolic = [float(p[2]) for p in points]
    description = (
        f"Blood pressure trend, {len(points)} readings from {points[0][0].astimezone(tz):%Y-%m-%d} "
        f"to {points[-1][0].astimezone(tz):%Y-%m-%d}: systolic {min(systolic):.0f} to {max(systolic):.0f}, "
        f"diastolic {min(diastolic):.0f} to {max(diastolic):.0f} mmHg; home threshold "
        f"{protocol.home_systolic_threshold}/{protocol.home_diastolic_threshold}. Each reading is in the "
        "table after the chart."
    )
    return format_html(
        '<svg class="bp-chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">{}{}</svg>',
        W,
        H,
        description,
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
        legend,
    )


# Each calendar or heat-map cell: its CSS class, a mark drawn in it (never colour alone) and the words.
ADHERENCE_LEGEND = (
    ("adh-full", "✓", "all expected"),
    ("adh-part", "◐", "half or more"),
    ("adh-low", "◔", "some"),
    ("adh-missed", "✗", "missed"),
    ("adh-none", "", "nothing expected"),
    ("adh-extra", "+", "readings outside the protocol"),
)
_MARKS = {css: (mark, label) for css, mark, label in ADHERENCE_LEGEND}


def adherence_cell_class(row: DailyAdherence | None) -> str:
    if row is None or row.expected == 0:
        return (
            "adh-none"
            if row is None or row.counted + row.morning + row.evening + row.other == 0
            else "adh-extra"
        )
    ratio = row.counted / row.expected
    if ratio >= 1:
        return "adh-full"
    if ratio >= 0.5:
        return "adh-part"
    if ratio > 0:
        return "adh-low"
    return "adh-missed"


def adherence_cell(day: dt.date, row: DailyAdherence | None, today: dt.date) -> dict:
    """A day of the calendar or the heat map: its rollup row, CSS class, mark and label."""
    css = adherence_cell_class(row)
    mark, label = _MARKS[css]
    return {"day": day, "row": row, "css": css, "mark": mark, "label": label, "future": day > today}


# Withings reports a cuff's battery as high, medium or low: a battery drawn with that many bars,
# and the word beside it (never colour alone).
BATTERY_BARS = {"high": 3, "medium": 2, "low": 1}


def battery_badge(level: str | None):
    if not level:
        return "—"
    bars = BATTERY_BARS.get(level)
    if bars is None:
        return level
    bar = '<rect x="{}" y="2" width="3" height="6" fill="currentColor"/>'
    fill = format_html_join("", bar, ((2 + 4 * i,) for i in range(bars)))
    return format_html(
        '<span class="battery battery-{}"><svg width="18" height="10" viewBox="0 0 18 10" aria-hidden="true"'
        ' focusable="false"><rect x="0.5" y="0.5" width="14" height="9" fill="none" stroke="currentColor"/>'
        '<rect x="15" y="3" width="2" height="4" fill="currentColor"/>{}</svg> {}</span>',
        level, fill, level.capitalize(),
    )  # fmt: skip
