"""Times shown to staff carry their zone: the participant's (abbreviation of the offset in force,
so the two 02:30s of a DST end differ) or UTC, labelled."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template

from core.localtime import zoned_date, zoned_time, zoned_time_html

UTC = dt.UTC


class Someone:
    timezone = "Europe/Berlin"


@pytest.mark.parametrize(
    ("instant", "shown"),
    [
        # Spring forward, 2026-03-29 02:00 CET → 03:00 CEST: the local day starts an hour after UTC's.
        (dt.datetime(2026, 3, 28, 22, 59, tzinfo=UTC), "2026-03-28 23:59 CET"),
        (dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "2026-03-29 00:30 CET"),
        (dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29 03:30 CEST"),
        # Fall back, 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice, the label tells which.
        (dt.datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "2026-10-25 00:30 CEST"),
        (dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 02:30 CEST"),
        (dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25 02:30 CET"),
    ],
)
def test_a_participant_time_is_their_wall_clock_with_the_zone_in_force(instant, shown):
    assert zoned_time(instant, Someone()) == shown
    assert zoned_time(instant, "Europe/Berlin") == shown


def test_without_a_participant_the_time_is_utc_and_says_so():
    instant = dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert zoned_time(instant) == "2026-03-28 23:30 UTC"
    assert zoned_date(instant) == "2026-03-28"
    assert zoned_date(instant, Someone()) == "2026-03-29"


def test_a_zone_without_an_abbreviation_is_shown_as_an_offset():
    instant = dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert zoned_time(instant, "America/Sao_Paulo") == "2026-03-28 20:30 UTC-03"


def test_html_carries_the_instant_with_its_offset_and_the_zone_name():
    html = zoned_time_html(dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC), Someone())
    assert html == (
        '<time datetime="2026-03-29T03:30:00+02:00" title="Europe/Berlin">2026-03-29 03:30 CEST</time>'
    )
    assert zoned_time_html(None, Someone()) == "—"


def test_template_filters():
    template = Template(
        "{% load staff_time %}{{ t|participant_time:p }}|{{ t|utc_time }}|{{ t|participant_date:p }}"
        "|{{ none|participant_time:p|default:'never' }}"
    )
    text = template.render(Context({"t": dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "p": Someone()}))
    assert ">2026-10-25 02:30 CET</time>|" in text
    assert ">2026-10-25 01:30 UTC</time>|" in text
    assert text.endswith("|2026-10-25|never")
