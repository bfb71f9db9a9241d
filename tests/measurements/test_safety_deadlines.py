"""Acknowledgement deadlines, hand-computed: on the clock, and counting only working hours (Monday to
Friday 09:00–17:00 wall-clock in the study's zone) across a weekend, a DST change and two zones."""

from __future__ import annotations

import datetime as dt

import pytest

from measurements.monitoring.deadlines import deadline_after

HOURS = (dt.time(9, 0), dt.time(17, 0))
UTC = dt.UTC


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_around_the_clock_is_plain_minutes_even_over_a_dst_change():
    # Sat 2026-03-28 23:00 UTC + 4 h: Paris skips 02:00→03:00 that night; the instant is still +4 h.
    assert deadline_after(utc(2026, 3, 28, 23, 0), 240, zone="Europe/Paris") == utc(2026, 3, 29, 3, 0)


def test_working_hours_inside_one_day():
    # Tue 2026-01-13 10:30 London (GMT = UTC) + 4 h → 14:30.
    assert deadline_after(utc(2026, 1, 13, 10, 30), 240, zone="Europe/London", working_hours=HOURS) == utc(
        2026, 1, 13, 14, 30
    )


def test_before_opening_counts_from_opening():
    # Tue 07:00 GMT: nothing counts until 09:00, then 4 h → 13:00.
    assert deadline_after(utc(2026, 1, 13, 7, 0), 240, zone="Europe/London", working_hours=HOURS) == utc(
        2026, 1, 13, 13, 0
    )


def test_friday_afternoon_runs_over_the_weekend_to_monday():
    # Fri 2026-01-09 16:00 GMT: 1 h left on Friday (16–17); Sat and Sun do not count; Mon 12 Jan
    # 09:00 + the remaining 3 h → 12:00 GMT.
    assert deadline_after(utc(2026, 1, 9, 16, 0), 240, zone="Europe/London", working_hours=HOURS) == utc(
        2026, 1, 12, 12, 0
    )


def test_over_a_weekend_with_a_dst_change_new_york():
    # Fri 2026-03-06 15:00 EST (20:00 UTC): 2 h on Friday. Clocks go forward Sun 8 March. Mon 9 March
    # 09:00 EDT + 2 h = 11:00 EDT = 15:00 UTC (it would be 16:00 UTC had the offset stayed -5).
    assert deadline_after(utc(2026, 3, 6, 20, 0), 240, zone="America/New_York", working_hours=HOURS) == utc(
        2026, 3, 9, 15, 0
    )


def test_over_a_weekend_with_a_dst_change_paris():
    # Fri 2026-03-27 16:00 CET (15:00 UTC): 1 h on Friday. Summer time from Sun 29 March. Mon 30 March
    # 09:00 CEST + 3 h = 12:00 CEST = 10:00 UTC.
    assert deadline_after(utc(2026, 3, 27, 15, 0), 240, zone="Europe/Paris", working_hours=HOURS) == utc(
        2026, 3, 30, 10, 0
    )


def test_the_same_instant_in_two_zones():
    # Fri 2026-03-06 20:00 UTC is 15:00 in New York (2 h of Friday left → Mon 11:00 EDT = 15:00 UTC)
    # but 20:00 in London, after hours (→ Mon 09:00 GMT + 4 h = 13:00 UTC).
    at = utc(2026, 3, 6, 20, 0)
    assert deadline_after(at, 240, zone="America/New_York", working_hours=HOURS) == utc(2026, 3, 9, 15, 0)
    assert deadline_after(at, 240, zone="Europe/London", working_hours=HOURS) == utc(2026, 3, 9, 13, 0)


def test_longer_than_a_working_day():
    # Wed 2026-01-14 15:00 GMT + 10 h: 2 h Wed, 8 h Thu → Thu 17:00 exactly.
    assert deadline_after(utc(2026, 1, 14, 15, 0), 600, zone="Europe/London", working_hours=HOURS) == utc(
        2026, 1, 15, 17, 0
    )


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="aware"):
        deadline_after(dt.datetime(2026, 1, 14, 15, 0), 60, zone="UTC")
