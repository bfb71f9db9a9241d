"""Acknowledgement deadlines: a number of minutes after an instant, either on the clock or counting
only working hours (Monday–Friday, ``[start, end)`` wall-clock in the study's time zone).

Working hours are wall-clock: a day on which the clocks change still has its 09:00–17:00, and the
deadline is the UTC instant of the local wall-clock time reached (so it moves by the DST offset).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

WORKDAYS = frozenset(range(5))  # Monday..Friday


def deadline_after(
    start: dt.datetime,
    minutes: int,
    *,
    zone: str,
    working_hours: tuple[dt.time, dt.time] | None = None,
) -> dt.datetime:
    """The instant ``minutes`` after ``start`` (aware), in UTC; with ``working_hours``, only time
    inside them counts (an alert raised on Friday evening is due during Monday's hours)."""
    if start.tzinfo is None:
        raise ValueError("deadline_after needs an aware instant")
    if working_hours is None:
        return (start + dt.timedelta(minutes=minutes)).astimezone(dt.UTC)
    tz = ZoneInfo(zone)
    open_at, close_at = working_hours
    local = start.astimezone(tz)
    day = local.date()
    remaining = dt.timedelta(minutes=minutes)
    for _ in range(3700):  # ten years of days: a bound, never reached with valid plans
        if day.weekday() in WORKDAYS:
            day_open = dt.datetime.combine(day, open_at, tzinfo=tz)
            day_close = dt.datetime.combine(day, close_at, tzinfo=tz)
            begin = max(day_open, local) if day == local.date() else day_open
            # Wall-clock arithmetic: the minutes of a working day are its wall-clock minutes.
            available = _wall(day_close) - _wall(begin) if begin < day_close else dt.timedelta(0)
            if available > dt.timedelta(0) and remaining <= available:
                reached = (_wall(begin) + remaining).replace(tzinfo=tz)
                return reached.astimezone(dt.UTC)
            remaining -= max(available, dt.timedelta(0))
        day += dt.timedelta(days=1)
    raise ValueError("no working time found")


def _wall(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=None)
