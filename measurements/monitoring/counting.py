"""The one adherence count: what every page showing "readings vs expected" uses — the participant's
status page, the monitoring list and participant page, the worklist, the staff home.

The rule: the rollup rows (`DailyAdherence`, made by `adherence.day_row` under the protocol version
in force that day: from the participant's start, never before enrolment; within the protocol's
windows; capped per window) summed over the participant's own local days:
"7 days" is the seven complete days before the participant's today, "study" every complete day.

It used to be counted three ways: the status page counted raw readings of the last 168 hours
(duplicates, extra readings of a window, readings outside the windows and before enrolment
included: 23 of 28), the lists summed the rollup over the UTC week (17/28), and the participant page
over the participant's week.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.db.models import (
    Case,
    DateField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils.timezone import now

from cohorts.models import Participant
from measurements.models import DailyAdherence

from .protocol import WEEK

FIELDS = ("week_counted", "week_expected", "study_counted", "study_expected")


def local_today(zone: str, at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(zone)).date()


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def _by_zone(at: dt.datetime, shift: int, field: str = "timezone") -> Case:
    """Each participant's local today (plus `shift` days) at `at`, from their zone (``field``: the
    path to it from the rows annotated): the zones whose date differs from UTC's are listed (a
    participant's zone is always a known one, see `cohorts.models.validate_timezone`), so no query is
    needed to find the zones in use."""
    utc_today = at.astimezone(dt.UTC).date()
    other: dict[dt.date, list[str]] = defaultdict(list)
    for zone in _zones():
        day = local_today(zone, at)
        if day != utc_today:
            other[day].append(zone)
    step = dt.timedelta(days=shift)
    whens = [When(**{f"{field}__in": zones}, then=Value(day + step)) for day, zones in sorted(other.items())]
    return Case(*whens, default=Value(utc_today + step), output_field=DateField())


def local_week_bounds(at: dt.datetime, *, field: str = "participant__timezone") -> tuple[Case, Case]:
    """(first day, today) of each participant's "7 days" at `at` as SQL expressions over rows that
    reach the participant's zone by ``field``: the week is [first day, today), as counted here."""
    return _by_zone(at, -WEEK, field), _by_zone(at, 0, field)


def _rollup(**filters):
    return (
        DailyAdherence.objects.filter(participant_id=OuterRef("pk"), **filters)
        .order_by()
        .values("participant_id")
    )


def _total(field: str, **filters) -> Coalesce:
    rows = _rollup(**filters).annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def _percent(**filters) -> Subquery:
    """counted × 100 / expected in ONE correlated subquery (NULL when nothing was expected), so
    sorting and filtering on it stay cheap."""
    ratio = Cast(F("counted_total"), FloatField()) * 100.0 / Cast(F("expected_total"), FloatField())
    rows = (
        _rollup(**filters)
        .annotate(expected_total=Sum("expected"), counted_total=Sum("counted"))
        .annotate(
            pct=Case(
                When(expected_total__gt=0, then=ExpressionWrapper(ratio, output_field=FloatField())),
                default=None,
                output_field=FloatField(),
            )
        )
        .values("pct")
    )
    return Subquery(rows, output_field=FloatField())


def adherence_annotate(qs: QuerySet[Participant], *, at: dt.datetime | None = None) -> QuerySet[Participant]:
    """`qs` with ``week_counted``, ``week_expected``, ``week_percent``, ``study_counted``,
    ``study_expected``, ``study_percent`` as of `at` (now), each participant's week being their own
    local one. SQL annotations only: no query of its own, none per row."""
    at = at or now()
    qs = qs.annotate(adherence_today=_by_zone(at, 0), adherence_week=_by_zone(at, -WEEK))
    week = {"day__gte": OuterRef("adherence_week"), "day__lt": OuterRef("adherence_today")}
    study = {"day__lt": OuterRef("adherence_today")}
    return qs.annotate(
        week_counted=_total("counted", **week),
        week_expected=_total("expected", **week),
        study_counted=_total("counted", **study),
        study_expected=_total("expected", **study),
        week_percent=_percent(**week),
        study_percent=_percent(**study),
    )


@dataclass(frozen=True)
class AdherenceCounts:
    week_counted: int
    week_expected: int
    study_counted: int
    study_expected: int

    @staticmethod
    def percent(counted: int, expected: int) -> float | None:
        return round(100.0 * counted / expected, 1) if expected else None

    @property
    def week_percent(self) -> float | None:
        return self.percent(self.week_counted, self.week_expected)

    @property
    def study_percent(self) -> float | None:
        return self.percent(self.study_counted, self.study_expected)


def adherence_counts(participant: Participant, *, at: dt.datetime | None = None) -> AdherenceCounts:
    """One participant's counts, by `adherence_annotate` (the same SQL as the lists)."""
    row = adherence_annotate(Participant.objects.filter(pk=participant.pk), at=at).values(*FIELDS).get()
    return AdherenceCounts(**row)
