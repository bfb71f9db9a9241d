"""What a push would send: one candidate row per reading (readings mode) or per participant and
protocol period (summary mode), each with its source values, in a stable order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from measurements.models import BloodPressureReading

from .models import RedcapProject, RedcapPushLog


@dataclass(frozen=True)
class Candidate:
    participant_id: int
    code: str
    source_key: str  # "reading:<id>" or "period:<n>"
    period: int | None  # summary mode: the period number (its instance)
    values: dict  # source name -> value (None: unknown)


def _readings(project: RedcapProject, since: dt.date | None) -> QuerySet:
    qs = BloodPressureReading.objects.filter(
        participant__study_id=project.study_id, duplicate_of__isnull=True, deleted_upstream=False
    )
    if since is not None:
        qs = qs.filter(measured_at__gte=dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC))
    return qs


def reading_candidates(project: RedcapProject, since: dt.date | None = None) -> Iterator[Candidate]:
    rows = (
        _readings(project, since)
        .order_by("participant__code", "measured_at", "pk")
        .values_list(
            "pk",
            "participant_id",
            "participant__code",
            "participant__timezone",
            "measured_at",
            "systolic",
            "diastolic",
            "pulse",
            "irregular_heartbeat",
            "source",
            "device_model",
        )
    )
    for pk, pid, code, tz, measured_at, sys_, dia, pulse, irregular, source, model in rows.iterator(
        chunk_size=2000
    ):
        yield Candidate(
            participant_id=pid,
            code=code,
            source_key=f"reading:{pk}",
            period=None,
            values={
                "measured_at_local": measured_at.astimezone(ZoneInfo(tz)).replace(tzinfo=None),
                "measured_at_utc": measured_at.astimezone(dt.UTC).replace(tzinfo=None),
                "systolic": sys_,
                "diastolic": dia,
                "pulse": pulse,
                "irregular_heartbeat": irregular,
                "source": source,
                "device_model": model or None,
                "timezone": tz,
            },
        )


def _mean(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    return (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def summary_candidates(project: RedcapProject, since: dt.date | None = None) -> Iterator[Candidate]:
    """Per participant, one row per period of `period_days` local days from the participant's start
    (their start date, else the enrollment day, else the day of their first reading)."""
    rows = (
        _readings(project, None)
        .order_by("participant__code", "measured_at", "pk")
        .values_list(
            "participant_id",
            "participant__code",
            "participant__timezone",
            "participant__start_date",
            "participant__enrolled_at",
            "measured_at",
            "systolic",
            "diastolic",
            "pulse",
        )
    )
    length = project.period_days
    current: tuple[int, str] | None = None
    periods: dict[int, list] = {}
    start: dt.date | None = None

    def flush() -> Iterator[Candidate]:
        assert current is not None
        assert start is not None
        for number in sorted(periods):
            first = start + dt.timedelta(days=(number - 1) * length)
            last = first + dt.timedelta(days=length - 1)
            if since is not None and last < since:
                continue
            readings = periods[number]
            yield Candidate(
                participant_id=current[0],
                code=current[1],
                source_key=f"period:{number}",
                period=number,
                values={
                    "period_start": first,
                    "period_end": last,
                    "readings_count": len(readings),
                    "days_with_readings": len({day for day, *_ in readings}),
                    "mean_systolic": _mean([r[1] for r in readings]),
                    "mean_diastolic": _mean([r[2] for r in readings]),
                    "mean_pulse": _mean([r[3] for r in readings if r[3] is not None]),
                },
            )

    for pid, code, tz, start_date, enrolled_at, measured_at, sys_, dia, pulse in rows.iterator(
        chunk_size=2000
    ):
        zone = ZoneInfo(tz)
        if current is None or current[0] != pid:
            if current is not None:
                yield from flush()
            current, periods = (pid, code), {}
            start = start_date or (enrolled_at.astimezone(zone).date() if enrolled_at else None)
            if start is None:
                start = measured_at.astimezone(zone).date()
        assert start is not None
        day = measured_at.astimezone(zone).date()
        if day < start:
            continue
        number = (day - start).days // length + 1
        periods.setdefault(number, []).append((day, sys_, dia, pulse))
    if current is not None:
        yield from flush()


def candidates(project: RedcapProject, since: dt.date | None = None) -> Iterator[Candidate]:
    if project.mode == RedcapProject.Mode.SUMMARY:
        return summary_candidates(project, since)
    return reading_candidates(project, since)


def push_logs(project: RedcapProject) -> QuerySet[RedcapPushLog]:
    return RedcapPushLog.objects.filter(project=project)
