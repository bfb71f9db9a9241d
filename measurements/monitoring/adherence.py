"""The daily adherence rollup (`DailyAdherence`): one row per participant-local day.

Rows are recomputed from the readings of the touched days after every upsert (API pages, CSV
imports), so the admin only sums small rows. A nightly task adds zero rows for days without any
reading (missed days must count) and a rebuild recomputes a participant or study from scratch
(after a protocol change). Each day is computed under the protocol version in force that day
(`protocol.ProtocolHistory`) and its row remembers that version, so a protocol edit never rewrites
the days before it takes effect.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q
from django.utils.timezone import now

from cohorts.models import Participant
from core.bulk import copy_upsert
from measurements.classification import (
    CRISIS,
    ELEVATED,
    EVENING,
    MORNING,
    NORMAL,
    STAGE_1,
    STAGE_2,
    acc_aha_category,
)
from measurements.models import BloodPressureReading, DailyAdherence, StudyProtocol
from measurements.models.monitoring import ProtocolRules
from measurements.sessions import session_gap

from .adherence_sql import adherence_days_sql, rollup_in_sql
from .protocol import (
    PERIOD_STATUSES,
    Period,
    ProtocolHistory,
    day_bounds,
    day_expected,
    participant_period,
    protocol_history,
    version_of,
    window_of,
)

#: Readings that count: not deleted upstream, not a CSV copy of an API reading, not flagged as
#: maybe another person (attrib 1). Implausible ones (`quality.PLAUSIBLE`) count for adherence but not
#: in averages, categories or alerts.
VALID_READINGS = Q(deleted_upstream=False, duplicate_of__isnull=True, ambiguous_user=False)
ROW_FIELDS = (
    "study_id",
    "protocol_day",
    "morning",
    "evening",
    "other",
    "counted",
    "expected",
    "avg_count",
    "systolic_sum",
    "diastolic_sum",
    NORMAL,
    ELEVATED,
    STAGE_1,
    STAGE_2,
    CRISIS,
    "protocol_version",
    "updated_at",
)
UPDATE_FIELDS = ["study", *ROW_FIELDS[1:]]


def day_row(
    *,
    participant: Participant,
    protocol: ProtocolRules,
    period: Period,
    day: dt.date,
    readings: Iterable[tuple[dt.datetime, Decimal, Decimal, int]],
    tz: ZoneInfo,
) -> DailyAdherence:
    """The rollup of one local day from its valid readings (measured_at, systolic, diastolic,
    quality_flags), under `protocol`, the version in force that day (`period` is the participant's
    under it). An implausible reading (quality_flags ≠ 0) counts for adherence — the participant did
    measure — but not in the categories or the average. When the protocol counts sessions, a reading
    less than the session gap after the day's previous one adds nothing to the windows' counts."""
    row = DailyAdherence(
        study_id=participant.study_id,
        participant_id=participant.pk,
        day=day,
        protocol_version=version_of(protocol),
    )
    number = period.day_number(day)
    row.protocol_day = number
    row.expected = day_expected(protocol, period, day)
    in_average = number is not None and not (protocol.discard_first_day and number == 1)
    sums = [Decimal(0), Decimal(0)]
    by_session = protocol.count_by == ProtocolRules.CountBy.SESSIONS
    gap, previous = session_gap(), None
    for measured_at, systolic, diastolic, flags in sorted(readings, key=lambda r: r[0]):
        window = window_of(measured_at.astimezone(tz), protocol)
        continues = previous is not None and measured_at - previous <= gap
        previous = measured_at
        if by_session and continues:
            pass  # the rest of a session: counted once, in its first reading's window
        elif window == MORNING:
            row.morning += 1
        elif window == EVENING:
            row.evening += 1
        else:
            row.other += 1
        if flags:
            continue
        category = acc_aha_category(systolic, diastolic)
        setattr(row, category, getattr(row, category) + 1)
        averaged = window in (MORNING, EVENING) or protocol.kind == StudyProtocol.Kind.DAILY
        if in_average and averaged:
            row.avg_count += 1
            sums[0] += systolic
            sums[1] += diastolic
    row.systolic_sum, row.diastolic_sum = sums
    if protocol.kind == StudyProtocol.Kind.HBPM:
        cap = protocol.readings_per_window
        counted = min(row.morning, cap) + min(row.evening, cap)
    else:
        counted = row.morning + row.evening + row.other
    row.counted = min(counted, row.expected)
    row.updated_at = now()
    return row


def _readings_by_day(participant: Participant, first: dt.date, last: dt.date, tz: ZoneInfo):
    start, end = day_bounds(first, last, tz)
    by_day: dict[dt.date, list] = defaultdict(list)
    query = (
        BloodPressureReading.objects.filter(
            VALID_READINGS, participant_id=participant.pk, measured_at__gte=start, measured_at__lt=end
        )
        .order_by()
        .values_list("measured_at", "systolic", "diastolic", "quality_flags")
    )
    if connection.vendor == "postgresql":  # plain tuples: the ORM's per-row work is most of the cost
        with connection.cursor() as cursor:
            cursor.execute(*query.query.sql_with_params())
            rows = cursor.fetchall()
    else:  # SQLite has no decimal type: a raw 120.5 would come back a float; the ORM converts it
        rows = list(query)
    for measured_at, systolic, diastolic, flags in rows:
        by_day[measured_at.astimezone(tz).date()].append((measured_at, systolic, diastolic, flags))
    return by_day


def _store(rows: list[DailyAdherence]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        fields = ("participant", "day", "study", *ROW_FIELDS[1:])
        copy_upsert(
            DailyAdherence,
            fields=fields,
            rows=([getattr(row, DailyAdherence._meta.get_field(f).attname) for f in fields] for row in rows),
            conflict=("participant", "day"),
            update=UPDATE_FIELDS,
        )
        return
    DailyAdherence.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["participant", "day"],
        update_fields=UPDATE_FIELDS,
    )


def adherence_refresh_days(
    *, participant_id: int, days: Iterable[dt.date], history: ProtocolHistory | None = None
) -> int:
    """Recompute the rollup of `days` (participant-local) from the readings. Idempotent."""
    days = sorted(set(days))
    if not days:
        return 0
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    return adherence_store_days(
        participant=participant, history=history or protocol_history(participant.study_id), days=days
    )


def adherence_store_days(*, participant: Participant, history: ProtocolHistory, days: list[dt.date]) -> int:
    """Recompute the rows of `days` (sorted, distinct), each under the version in force that day: in
    one SQL statement per version on PostgreSQL when it knows the participant's zone
    (`adherence_sql`), else through `day_row`, the definition."""
    if not days:
        return 0
    store = adherence_days_sql if rollup_in_sql(participant.timezone) else adherence_days_python
    for protocol, some in history.split(days):
        period = participant_period(participant, protocol, participant.study)
        store(participant=participant, protocol=protocol, period=period, days=some)
    return len(days)


def adherence_days_python(
    *, participant: Participant, protocol: ProtocolRules, period: Period, days: list[dt.date]
) -> int:
    tz = ZoneInfo(participant.timezone)
    by_day = _readings_by_day(participant, days[0], days[-1], tz)
    rows = [
        day_row(participant=participant, protocol=protocol, period=period, day=d, readings=by_day[d], tz=tz)
        for d in days
    ]
    _store(rows)
    return len(rows)


def adherence_refresh_instants(*, participant_id: int, instants: Iterable[dt.datetime]) -> int:
    """Refresh the local days containing `instants` (called after readings changed)."""
    instants = list(instants)
    if not instants:
        return 0
    tz_name = Participant.objects.values_list("timezone", flat=True).get(pk=participant_id)
    tz = ZoneInfo(tz_name)
    return adherence_refresh_days(
        participant_id=participant_id, days={i.astimezone(tz).date() for i in instants}
    )


def protocol_days(participant: Participant, history: ProtocolHistory, last: dt.date) -> list[dt.date]:
    """The participant's protocol days through `last`, each judged by the version in force that day."""
    days: list[dt.date] = []
    for protocol, first, until in history.ranges():
        period = participant_period(participant, protocol, participant.study)
        stop = last if until is None else min(last, until)
        days.extend(d for d in period.days_through(stop) if d >= first)
    return days


def _day_rows(participant: Participant, history: ProtocolHistory, days: list[dt.date], by_day, tz):
    rows = []
    for protocol, some in history.split(days):
        period = participant_period(participant, protocol, participant.study)
        rows.extend(
            day_row(
                participant=participant, protocol=protocol, period=period, day=d, readings=by_day[d], tz=tz
            )
            for d in some
        )
    return rows


def adherence_rebuild_participant(
    *, participant_id: int, today: dt.date | None = None, history: ProtocolHistory | None = None
) -> int:
    """Recompute every row: the protocol period through today plus any day with a reading;
    rows of other days are removed."""
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    history = history or protocol_history(participant.study_id)
    tz = ZoneInfo(participant.timezone)
    today = today or now().astimezone(tz).date()
    days = set(protocol_days(participant, history, today))
    for measured_at in (
        BloodPressureReading.objects.filter(VALID_READINGS, participant_id=participant_id)
        .order_by()
        .values_list("measured_at", flat=True)
    ):
        days.add(measured_at.astimezone(tz).date())
    DailyAdherence.objects.filter(participant_id=participant_id).exclude(day__in=days).delete()
    if not days:
        return 0
    ordered = sorted(days)
    _store(
        _day_rows(
            participant, history, ordered, _readings_by_day(participant, ordered[0], ordered[-1], tz), tz
        )
    )
    return len(ordered)


def adherence_rebuild_study(*, study_id: int, today: dt.date | None = None) -> int:
    history = protocol_history(study_id)
    total = 0
    for pid in Participant.objects.filter(study_id=study_id).order_by("pk").values_list("pk", flat=True):
        total += adherence_rebuild_participant(participant_id=pid, today=today, history=history)
    return total


def adherence_fill_missing(*, study_id: int, through: dt.date | None = None, lookback_days: int = 14) -> int:
    """Create zero rows for protocol days without any reading (recent days only; a rebuild covers
    older ones), so missed days count. Returns the rows created. Idempotent."""
    history = protocol_history(study_id)
    participants = list(
        Participant.objects.select_related("study").filter(study_id=study_id, status__in=PERIOD_STATUSES)
    )
    wanted: list[DailyAdherence] = []
    no_readings: defaultdict[dt.date, list] = defaultdict(list)
    for participant in participants:
        tz = ZoneInfo(participant.timezone)
        last = through or now().astimezone(tz).date()
        recent = [
            d
            for d in protocol_days(participant, history, last)
            if d > last - dt.timedelta(days=lookback_days)
        ]
        wanted.extend(_day_rows(participant, history, recent, no_readings, tz))
    if not wanted:
        return 0
    existing = set(
        DailyAdherence.objects.filter(
            participant_id__in={r.participant_id for r in wanted}, day__gte=min(r.day for r in wanted)
        ).values_list("participant_id", "day")
    )
    missing = [r for r in wanted if (r.participant_id, r.day) not in existing]
    DailyAdherence.objects.bulk_create(missing, batch_size=1000, ignore_conflicts=True)
    return len(missing)
