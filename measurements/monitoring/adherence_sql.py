"""The daily-adherence rollup of some days, computed by PostgreSQL in one statement.

`adherence.day_row` is the definition; this is the same computation set-based, so that an ingested
page does not read its days' readings back into Python (bench/ingest.py: that read-back and the
per-day objects were the largest part of ingesting a page). Same rules, one to one:
local day and time by ``AT TIME ZONE`` (PostgreSQL reads the same system tz database as `zoneinfo`,
and only zones it knows are sent here), windows ``[start, end)`` with 00:00 meaning midnight, ACC/AHA
category thresholds of `classification.acc_aha_category`, exact numeric sums, implausible readings
(quality_flags ≠ 0) counted for adherence only, sessions (a reading within the gap of the day's
previous one) counted once when the protocol says so. Tests compare both
paths row by row (tests/measurements/test_adherence_sql.py).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils.timezone import now

from cohorts.models import Participant
from measurements.models import StudyProtocol
from measurements.models.monitoring import ProtocolRules
from measurements.sessions import session_gap

from .protocol import MIDNIGHT, Period, day_bounds, version_of

_ZONES: dict[str, bool] = {}

ROLLUP = """
INSERT INTO measurements_dailyadherence AS d (
    participant_id, study_id, day, protocol_day, morning, evening, other, counted, expected, avg_count,
    systolic_sum, diastolic_sum, normal, elevated, stage_1, stage_2, crisis, protocol_version_id, updated_at)
SELECT %(participant)s, %(study)s, x.day, x.number, x.morning, x.evening, x.other,
    LEAST(CASE WHEN %(hbpm)s THEN LEAST(x.morning, %(cap)s) + LEAST(x.evening, %(cap)s)
               ELSE x.morning + x.evening + x.other END, x.expected),
    x.expected, x.avg_count, x.systolic_sum, x.diastolic_sum,
    x.normal, x.elevated, x.stage_1, x.stage_2, x.crisis, %(version)s, %(stamp)s
FROM (
    SELECT days.day, days.number,
        CASE WHEN days.number IS NULL THEN 0 ELSE %(expected)s END AS expected,
        count(*) FILTER (WHERE r.win = 'm' AND r.counts) AS morning,
        count(*) FILTER (WHERE r.win = 'e' AND r.counts) AS evening,
        count(*) FILTER (WHERE r.win = 'o' AND r.counts) AS other,
        count(*) FILTER (WHERE days.in_average AND r.averaged) AS avg_count,
        coalesce(sum(r.systolic) FILTER (WHERE days.in_average AND r.averaged), 0) AS systolic_sum,
        coalesce(sum(r.diastolic) FILTER (WHERE days.in_average AND r.averaged), 0) AS diastolic_sum,
        count(*) FILTER (WHERE r.category = 'normal') AS normal,
        count(*) FILTER (WHERE r.category = 'elevated') AS elevated,
        count(*) FILTER (WHERE r.category = 'stage_1') AS stage_1,
        count(*) FILTER (WHERE r.category = 'stage_2') AS stage_2,
        count(*) FILTER (WHERE r.category = 'crisis') AS crisis
    FROM (
        SELECT day, number, number IS NOT NULL AND NOT (%(discard_first)s AND number = 1) AS in_average
        FROM (
            SELECT day, CASE WHEN day >= %(start)s::date AND (%(end)s::date IS NULL OR day <= %(end)s::date)
                             THEN day - %(start)s::date + 1 END AS number
            FROM unnest(%(days)s::date[]) AS day
        ) numbered
    ) days
    LEFT JOIN (
        SELECT w.day, w.win, w.systolic, w.diastolic,
            NOT (%(sessions)s AND coalesce(w.continues, false)) AS counts,
            w.quality_flags = 0 AND (w.win IN ('m', 'e') OR %(daily)s) AS averaged,
            CASE WHEN w.quality_flags <> 0 THEN NULL
                 WHEN w.systolic > 180 OR w.diastolic > 120 THEN 'crisis'
                 WHEN w.systolic >= 140 OR w.diastolic >= 90 THEN 'stage_2'
                 WHEN w.systolic >= 130 OR w.diastolic >= 80 THEN 'stage_1'
                 WHEN w.systolic >= 120 THEN 'elevated'
                 ELSE 'normal' END AS category
        FROM (
            SELECT v.local::date AS day, v.systolic, v.diastolic, v.quality_flags,
                v.measured_at - lag(v.measured_at) OVER (PARTITION BY v.local::date ORDER BY v.measured_at)
                    <= %(session_gap)s AS continues,
                CASE WHEN v.local::time >= %(morning_start)s::time
                          AND (%(morning_open)s OR v.local::time < %(morning_end)s::time) THEN 'm'
                     WHEN v.local::time >= %(evening_start)s::time
                          AND (%(evening_open)s OR v.local::time < %(evening_end)s::time) THEN 'e'
                     ELSE 'o' END AS win
            FROM (
                SELECT measured_at AT TIME ZONE %(zone)s AS local, measured_at, systolic, diastolic,
                    quality_flags
                FROM measurements_bloodpressurereading
                WHERE participant_id = %(participant)s AND measured_at >= %(low)s AND measured_at < %(high)s
                    AND NOT deleted_upstream AND duplicate_of_id IS NULL AND NOT ambiguous_user
            ) v
        ) w
    ) r ON r.day = days.day
    GROUP BY days.day, days.number, days.in_average
) x
ON CONFLICT (participant_id, day) DO UPDATE SET
    study_id = EXCLUDED.study_id, protocol_day = EXCLUDED.protocol_day, morning = EXCLUDED.morning,
    evening = EXCLUDED.evening, other = EXCLUDED.other, counted = EXCLUDED.counted,
    expected = EXCLUDED.expected, avg_count = EXCLUDED.avg_count, systolic_sum = EXCLUDED.systolic_sum,
    diastolic_sum = EXCLUDED.diastolic_sum, normal = EXCLUDED.normal, elevated = EXCLUDED.elevated,
    stage_1 = EXCLUDED.stage_1, stage_2 = EXCLUDED.stage_2, crisis = EXCLUDED.crisis,
    protocol_version_id = EXCLUDED.protocol_version_id, updated_at = EXCLUDED.updated_at
"""


def zone_in_database(name: str) -> bool:
    """Whether PostgreSQL knows the IANA zone `name` (asked once per process and zone)."""
    known = _ZONES.get(name)
    if known is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %s)", [name])
            known = _ZONES[name] = bool(cursor.fetchone()[0])
    return known


def rollup_in_sql(zone: str) -> bool:
    return connection.vendor == "postgresql" and zone_in_database(zone)


def adherence_days_sql(
    *, participant: Participant, protocol: ProtocolRules, period: Period, days: list[dt.date]
) -> int:
    """Upsert the rollup rows of `days` (sorted, distinct, participant-local), all under the
    protocol version `protocol`, in one statement."""
    low, high = day_bounds(days[0], days[-1], ZoneInfo(participant.timezone))
    params = {
        "participant": participant.pk,
        "study": participant.study_id,
        "days": days,
        "zone": participant.timezone,
        "low": low,
        "high": high,
        "start": period.start,
        "end": period.end,
        "expected": protocol.expected_per_day,
        "discard_first": protocol.discard_first_day,
        "hbpm": protocol.kind == StudyProtocol.Kind.HBPM,
        "daily": protocol.kind == StudyProtocol.Kind.DAILY,
        "cap": protocol.readings_per_window,
        "sessions": protocol.count_by == ProtocolRules.CountBy.SESSIONS,
        "session_gap": session_gap(),
        "morning_start": protocol.morning_start,
        "morning_end": protocol.morning_end,
        "morning_open": protocol.morning_end == MIDNIGHT,
        "evening_start": protocol.evening_start,
        "evening_end": protocol.evening_end,
        "evening_open": protocol.evening_end == MIDNIGHT,
        "version": getattr(version_of(protocol), "pk", None),
        "stamp": now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(ROLLUP, params)
    return len(days)
