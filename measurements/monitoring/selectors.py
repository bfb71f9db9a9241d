"""Reads for the coordinators' monitoring: per-participant columns as SQL annotations (a constant
number of queries whatever the number of rows), and the detail of one participant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from cohorts.models import Participant
from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device, StudyProtocol

from .adherence import VALID_READINGS
from .charts import adherence_cell
from .counting import AdherenceCounts, adherence_annotate, adherence_counts, local_today

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


def _rollup_total(field: str, output_field) -> Subquery:
    """The sum of `field` over all the participant's rollup rows (NULL if none)."""
    rows = (
        DailyAdherence.objects.filter(participant_id=OuterRef("pk"))
        .order_by()
        .values("participant_id")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Subquery(rows, output_field=output_field)


def monitoring_annotate(qs: QuerySet[Participant], *, at: dt.datetime | None = None) -> QuerySet[Participant]:
    """Last reading (time, values, plausibility), the study's guideline, adherence
    (`counting.adherence_annotate`: 7 days and whole study), protocol average, battery, last cuff
    sync, open alerts."""
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
    return adherence_annotate(qs, at=at).annotate(
        last_reading_at=Subquery(last.values("measured_at")[:1], output_field=DateTimeField()),
        last_systolic=Subquery(last.values("systolic")[:1]),
        last_diastolic=Subquery(last.values("diastolic")[:1]),
        last_quality_flags=Subquery(last.values("quality_flags")[:1]),
        bp_guideline=F("study__protocol__guideline"),
        avg_n=Coalesce(_rollup_total("avg_count", IntegerField()), Value(0)),
        avg_sys_sum=_rollup_total("systolic_sum", avg_sum),
        avg_dia_sum=_rollup_total("diastolic_sum", avg_sum),
        battery=Subquery(cuff.values("battery")[:1]),
        last_cuff_sync=Subquery(cuff.values("last_session_at")[:1], output_field=DateTimeField()),
        open_alerts=Coalesce(Subquery(open_alerts, output_field=IntegerField()), Value(0)),
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
    counts: AdherenceCounts
    today: dt.date
    current_missed_streak: int
    longest_missed_streak: int
    average: ProtocolAverage


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
    *, participant: Participant, protocol: StudyProtocol, at: dt.datetime | None = None
) -> AdherenceSummary:
    """The participant page's adherence: the counts of `counting` (as every other page), the
    rollup rows for the calendar, missed-day streaks and the protocol average."""
    at = at or now()
    today = local_today(participant.timezone, at)
    days = list(DailyAdherence.objects.filter(participant=participant).order_by("day"))
    current, longest = missed_streaks(days, today)
    average = protocol_average(
        readings=sum(d.avg_count for d in days),
        systolic_sum=sum((d.systolic_sum for d in days), Decimal(0)),
        diastolic_sum=sum((d.diastolic_sum for d in days), Decimal(0)),
        protocol=protocol,
    )
    return AdherenceSummary(
        days=days,
        counts=adherence_counts(participant, at=at),
        today=today,
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
