"""The set-based rollup (`adherence_sql`, PostgreSQL) against `day_row`, the Python definition:
identical rows for varied readings — DST days, zones with odd offsets or DST at midnight, window
edges, category edges, flagged and implausible readings, bursts (sessions), both protocol kinds and
both ways of counting, open and closed periods."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from measurements.models import DailyAdherence, StudyProtocol
from measurements.monitoring.adherence import adherence_days_python
from measurements.monitoring.adherence_sql import adherence_days_sql, zone_in_database
from measurements.monitoring.protocol import participant_period
from tests.factories import ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL rollup is PostgreSQL's"),
]

ZONES = [
    "Europe/Paris",  # DST at 02:00 (spring 2024-03-31, autumn 2024-10-27)
    "America/New_York",  # DST 2024-03-10 / 2024-11-03
    "America/Santiago",  # DST switches at midnight (2024-04-07, 2024-09-08)
    "Australia/Lord_Howe",  # 30-minute DST shift (2024-04-07, 2024-10-06)
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Chatham",  # +12:45/+13:45
    "UTC",
]
#: Values on and around every ACC/AHA threshold.
SYSTOLIC = ["100", "119.99", "120", "129.99", "130", "139.99", "140", "180", "180.01", "181", "200"]
DIASTOLIC = ["60", "79.99", "80", "89.99", "90", "120", "120.01", "121", "1"]  # 1: implausible
FIELDS = (
    "study_id", "protocol_day", "morning", "evening", "other", "counted", "expected", "avg_count",
    "systolic_sum", "diastolic_sum", "normal", "elevated", "stage_1", "stage_2", "crisis",
)  # fmt: skip


def _readings(participant, rng: random.Random, days: list[dt.date]) -> None:
    zone = ZoneInfo(participant.timezone)
    for day in days:
        for _ in range(rng.randrange(0, 7)):
            local = dt.datetime.combine(day, dt.time.min) + dt.timedelta(seconds=rng.randrange(86400))
            if rng.random() < 0.3:  # on a window edge, to the second
                local = local.replace(hour=rng.choice([3, 4, 11, 12, 16, 17, 23, 0]), minute=0, second=0)
                local = local - dt.timedelta(seconds=rng.choice([0, 1]))
            flags = rng.choice([{}, {}, {}, {"ambiguous_user": True}, {"deleted_upstream": True}])
            ReadingFactory(
                participant=participant,
                measured_at=local.replace(tzinfo=zone, fold=rng.randrange(2)).astimezone(dt.UTC),
                systolic=Decimal(rng.choice(SYSTOLIC)),
                diastolic=Decimal(rng.choice(DIASTOLIC)),
                **flags,
            )
        if rng.random() < 0.4:  # a triple-mode burst (one session), its last reading on the gap's edge
            local = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
            first = local.replace(tzinfo=zone).astimezone(dt.UTC)
            for offset in (dt.timedelta(0), dt.timedelta(seconds=50), dt.timedelta(minutes=10, seconds=50)):
                ReadingFactory(
                    participant=participant,
                    measured_at=first + offset,
                    systolic=Decimal(rng.choice(SYSTOLIC)),
                    diastolic=Decimal(rng.choice(DIASTOLIC)),
                )
    day = rng.choice(days)  # a CSV copy of an API reading does not count
    original = ReadingFactory(participant=participant, measured_at=dt.datetime.combine(day, dt.time(8), zone))
    ReadingFactory(participant=participant, measured_at=original.measured_at, duplicate_of=original)


def _rows(participant) -> dict:
    return {
        row["day"]: tuple(row[f] for f in FIELDS)
        for row in DailyAdherence.objects.filter(participant=participant).values("day", *FIELDS)
    }


def _both(participant, protocol, days) -> tuple[dict, dict]:
    period = participant_period(participant, protocol, participant.study)
    adherence_days_python(participant=participant, protocol=protocol, period=period, days=days)
    python = _rows(participant)
    DailyAdherence.objects.filter(participant=participant).delete()
    adherence_days_sql(participant=participant, protocol=protocol, period=period, days=days)
    return python, _rows(participant)


PROTOCOLS = [
    {},
    {"kind": StudyProtocol.Kind.DAILY, "readings_per_day": 3, "discard_first_day": False},
    {"readings_per_window": 1, "duration_days": None, "morning_end": dt.time(11, 30)},
    {"evening_start": dt.time(18, 15), "evening_end": dt.time(23, 0), "discard_first_day": False},
    {"count_by": StudyProtocol.CountBy.SESSIONS},
    {"kind": StudyProtocol.Kind.DAILY, "readings_per_day": 2, "count_by": StudyProtocol.CountBy.SESSIONS},
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("settings_index", range(len(PROTOCOLS)))
def test_sql_rollup_equals_the_python_definition(zone, settings_index):
    rng = random.Random(f"{zone}-{settings_index}")
    study = StudyFactory(start_date=dt.date(2024, 3, 28))
    protocol = StudyProtocol.objects.create(study=study, **PROTOCOLS[settings_index])
    participant = ParticipantFactory(study=study, timezone=zone)
    if settings_index == 2:
        participant.start_date = dt.date(2024, 4, 5)
        participant.end_date = dt.date(2024, 9, 9)
        participant.save()
    dst_days = [
        dt.date(2024, m, d) for m, d in ((3, 10), (3, 31), (4, 7), (9, 8), (10, 6), (10, 27), (11, 3))
    ]
    days = sorted({*dst_days, *(dt.date(2024, 3, 26) + dt.timedelta(days=i) for i in range(16))})
    _readings(participant, rng, days)
    touched = sorted([*rng.sample(days, len(days) - 3), dt.date(2024, 12, 25)])  # + a day without readings
    python, sql = _both(participant, protocol, touched)
    assert set(python) == set(touched)
    assert sql == python
    assert sum(r[FIELDS.index("avg_count")] for r in python.values()) > 0  # the cases are not all empty


def test_sql_rollup_of_a_participant_without_a_period():
    study = StudyFactory(start_date=None)
    protocol = StudyProtocol(study=study)
    participant = ParticipantFactory(study=study, timezone="America/New_York", status="invited")
    ReadingFactory(participant=participant, measured_at=dt.datetime(2024, 11, 3, 5, 30, tzinfo=dt.UTC))
    python, sql = _both(participant, protocol, [dt.date(2024, 11, 3)])
    assert sql == python
    assert python[dt.date(2024, 11, 3)][FIELDS.index("protocol_day")] is None


def test_zones_the_database_does_not_know_are_reported():
    assert zone_in_database("Europe/Paris")
    assert not zone_in_database("Mars/Olympus_Mons")
