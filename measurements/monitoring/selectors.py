"""Reads for the coordinators' monitoring: per-participant columns as SQL annotations (a constant
number of queries whatever the number of rows), and the detail of one participant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils.timezone import now

from cohorts.models import Participant
from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device, StudyProtocol

from .adherence import VALID_READINGS
from .charts import adherence_cell
from .protocol import week_start

BROKEN_OR_FAILING = (
    Participant.LinkStatus.NEEDS_REAUTH,
    Participant.LinkStatus.REVOKED,
    Participant.LinkStatus.REFRESH_FAILED,
)
ENDED = (Participant.Status.WITHDRAWN, Participant.Status.COMPLETED)
#: A link that needs someone's action: broken or failing, for a participant still taking part
#: (withdrawal revokes the link on purpose).
LINK_BROKEN = Q(link_status__in=BROKEN_OR_FAILING) & ~Q(status__in=ENDED)
CALENDAR_DAYS = 28


def _rollup_total(field: str, output_field, **filters) -> Subquery:
    """The sum of `field` over the participant's rollup rows matching `filters` (NULL if none)."""
    rows = (
        DailyAdherence.objects.filter(participant_id=OuterRef("pk"), **filters)
        .order_by()
        .values("participant_id")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Subquery(rows, output_field=output_field)


def _sum_rollup(field: str, **filters) -> Coalesce:
    return Coalesce(_rollup_total(field, IntegerField(), **filters), Value(0))


def _percent_rollup(**filters) -> Subquery:
    """counted × 100 / expected over the rollup rows matching `filters`, in ONE correlated
    subquery (NULL when nothing was expected), so sorting and filtering on it stay cheap."""
    rows = (
        DailyAdherence.objects.filter(participant_id=OuterRef("pk"), **filters)
        .order_by()
        .values("participant_id")
        .annotate(expected_total=Sum("expected"), counted_total=Sum("counted"))
        .annotate(
            pct=Case(
                When(
                    expected_total__gt=0,
                    then=ExpressionWrapper(
                        Cast(F("counted_total"), FloatField())
                        * 100.0
                        / Cast(F("expected_total"), FloatField()),
                        output_field=FloatField(),
                    ),
                ),
                default=None,
                output_field=FloatField(),
            )
        )
        .values("pct")
    )
    return Subquery(rows, output_field=FloatField())


def monitoring_annotate(qs: QuerySet[Participant], *, today: dt.date | None = None) -> QuerySet[Participant]:
    """Last reading (time, values), readings vs expected over the 7 complete days before `today`
    and over the whole study, protocol average, battery, last cuff sync, open alerts."""
    today = today or now().date()
    first = week_start(today)
    last = BloodPressureReading.objects.filter(VALID_READINGS, participant_id=OuterRef("pk")).order_by(
        "-measured_at"
    )
    cuff = Device.objects.filter(participant_id=OuterRef("pk")).order_by(
        F("last_session_at").desc(nulls_last=True)
    )
    avg_sum = DecimalField(max_digits=12, decimal_places=2)
    open_alerts = (
        Alert.objects.filter(participant_id=OuterRef("pk"), resolved_at__isnull=True)
        .order_by()
        .values("participant_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return qs.annotate(
        last_reading_at=Subquery(last.values("measured_at")[:1], output_field=DateTimeField()),
        last_systolic=Subquery(last.values("systolic")[:1]),
        last_diastolic=Subquery(last.values("diastolic")[:1]),
        week_counted=_sum_rollup("counted", day__gte=first, day__lt=today),
        week_expected=_sum_rollup("expected", day__gte=first, day__lt=today),
        study_counted=_sum_rollup("counted", day__lt=today),
        study_expected=_sum_rollup("expected", day__lt=today),
        avg_n=_sum_rollup("avg_count"),
        avg_sys_sum=_rollup_total("systolic_sum", avg_sum),
        avg_dia_sum=_rollup_total("diastolic_sum", avg_sum),
        battery=Subquery(cuff.values("battery")[:1]),
        last_cuff_sync=Subquery(cuff.values("last_session_at")[:1], output_field=DateTimeField()),
        open_alerts=Coalesce(Subquery(open_alerts, output_field=IntegerField()), Value(0)),
        week_percent=_percent_rollup(day__gte=first, day__lt=today),
        study_percent=_percent_rollup(day__lt=today),
    )


# -- one participant -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtocolAverage:
    systolic: Decimal | None
    diastolic: Decimal | None
    readings: int
    valid: bool
    above_threshold: bool | None

    @property
    def label(self) -> str:
        if self.systolic is None:
            return "—"
        return f"{self.systolic:.0f}/{self.diastolic:.0f}"


def protocol_average(
    *, readings: int, systolic_sum: Decimal | None, diastolic_sum: Decimal | None, protocol: StudyProtocol
) -> ProtocolAverage:
    if not readings:
        return ProtocolAverage(None, None, 0, False, None)
    sys_avg = (Decimal(systolic_sum or 0) / readings).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    dia_avg = (Decimal(diastolic_sum or 0) / readings).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    valid = readings >= protocol.min_valid_readings
    above = (
        sys_avg >= protocol.home_systolic_threshold or dia_avg >= protocol.home_diastolic_threshold
        if valid
        else None
    )
    return ProtocolAverage(sys_avg, dia_avg, readings, valid, above)


@dataclass(frozen=True)
class AdherenceSummary:
    days: list[DailyAdherence]
    week_counted: int
    week_expected: int
    study_counted: int
    study_expected: int
    current_missed_streak: int
    longest_missed_streak: int
    average: ProtocolAverage

    @staticmethod
    def percent(counted: int, expected: int) -> float | None:
        return round(100.0 * counted / expected, 1) if expected else None

    @property
    def week_percent(self) -> float | None:
        return self.percent(self.week_counted, self.week_expected)

    @property
    def study_percent(self) -> float | None:
        return self.percent(self.study_counted, self.study_expected)


def missed_streaks(days: list[DailyAdherence], today: dt.date) -> tuple[int, int]:
    """(current, longest) runs of consecutive expected days before `today` without a counted
    reading; days that expect nothing neither break nor extend a run."""
    current = longest = 0
    for row in days:
        if row.day >= today or row.expected == 0:
            continue
        if row.counted == 0:
            current += 1
            longest = max(longest, current)
        else:
            current = 0
    return current, longest


def participant_adherence(
    *, participant: Participant, protocol: StudyProtocol, today: dt.date
) -> AdherenceSummary:
    days = list(DailyAdherence.objects.filter(participant=participant).order_by("day"))
    complete = [d for d in days if d.day < today]
    week = [d for d in complete if d.day >= week_start(today)]
    current, longest = missed_streaks(days, today)
    average = protocol_average(
        readings=sum(d.avg_count for d in days),
        systolic_sum=sum((d.systolic_sum for d in days), Decimal(0)),
        diastolic_sum=sum((d.diastolic_sum for d in days), Decimal(0)),
        protocol=protocol,
    )
    return AdherenceSummary(
        days=days,
        week_counted=sum(d.counted for d in week),
        week_expected=sum(d.expected for d in week),
        study_counted=sum(d.counted for d in complete),
        study_expected=sum(d.expected for d in complete),
        current_missed_streak=current,
        longest_missed_streak=longest,
        average=average,
    )


def adherence_calendar(*, days: list[DailyAdherence], today: dt.date) -> list[list[dict]]:
    """The participant page's calendar: whole weeks, Monday first, from the first rollup day (at
    least four weeks back) through `today`; a cell per day (`charts.adherence_cell`)."""
    by_day = {row.day: row for row in days}
    first = today - dt.timedelta(days=CALENDAR_DAYS - 1)
    if days:
        first = min(days[0].day, first)
    day = first - dt.timedelta(days=first.weekday())
    weeks = []
    while day <= today:
        week = []
        for _ in range(7):
            row = by_day.get(day)
            week.append(adherence_cell(day, row, today))
            day += dt.timedelta(days=1)
        weeks.append(week)
    return weeks
