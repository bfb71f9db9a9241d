"""Store one getmeas page: parse, upsert by (participant, grpid), refresh the touched days' rollup,
check for crisis readings — what the sync does per page, in the caller's transaction.

On PostgreSQL the page goes as COPY text (`copy_lines`) into a temporary stage and one statement (its
writing part generated from `columns`) does the rest of the writing: it finds the stored rows whose
`modified` changed (their old day needs a refresh too), upserts, and hands back only what the
monitoring needs — counts, the touched local days and the fresh valid readings for the crisis check —
instead of a row per reading. The rollup is one more statement (`adherence_sql`). Before
(bench/ingest.py, 200k groups): ~8,500 rows/s with objects per reading and the rollup recomputed in
Python; the numbers after are in the commit that added this. Elsewhere (the SQLite demo), or for a
zone PostgreSQL does not know, the reference path (`parse.parse_groups` + `upsert.readings_upsert_api`)
does the same work; tests compare both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils.timezone import now

from cohorts.enrollment import CollectionRefused, participant_collection_refusal
from cohorts.models import Participant
from measurements import quality
from measurements.monitoring.adherence import adherence_store_days
from measurements.monitoring.adherence_sql import rollup_in_sql
from measurements.monitoring.alerts import CRISIS_ALERT_MAX_AGE, alerts_check_readings
from measurements.monitoring.protocol import ProtocolHistory, protocol_history

from .columns import UPSERT_WITH
from .copy_lines import CopyRow, parse_groups_copy
from .parse import parse_groups
from .upsert import UpsertResult, readings_flag_deleted, readings_upsert_api, stage_lines

# What the monitoring needs of a page instead of a row per reading: counts, the local days touched
# (of rows written and of the stored versions they replaced) and the fresh readings the safety plan
# checks (not maybe another person, no hard plausibility flag) with their flags.
UPSERT_PAGE = f"""{UPSERT_WITH}
SELECT
    (SELECT count(*) FILTER (WHERE inserted) FROM up),
    (SELECT count(*) FROM up),
    (SELECT array_agg(DISTINCT (c.at AT TIME ZONE %(zone)s)::date)
        FROM (SELECT measured_at FROM up UNION ALL SELECT measured_at FROM moved) AS c(at)),
    (SELECT json_agg(json_build_array(
            extract(epoch FROM measured_at)::bigint, systolic::text, diastolic::text, quality_flags))
        FROM up WHERE NOT ambiguous_user AND {quality.alertable_sql("quality_flags")}
            AND measured_at >= %(fresh_after)s)
"""  # noqa: S608 (no value is interpolated: `columns` builds the statement from identifiers)


@dataclass
class PageStored:
    upsert: UpsertResult
    skipped: Counter


def _participant(participant_id: int) -> tuple[Participant, ProtocolHistory]:
    """The participant with its study, and the study's protocol versions (or the default one)."""
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    return participant, protocol_history(participant.study_id)


def _latest(rows: list[CopyRow]) -> dict[int, CopyRow]:
    """A group repeated within the page counts once: the most recently modified version wins
    (as `upsert._latest_per_grpid`)."""
    latest: dict[int, CopyRow] = {}
    for row in rows:
        current = latest.get(row.grpid)
        if current is None or row.recency >= current.recency:
            latest[row.grpid] = row
    return latest


def _upsert(participant: Participant, latest: dict[int, CopyRow], source_timezone: str):
    """COPY the page into the stage and upsert it → (inserted, written, touched days, fresh readings)."""
    with connection.cursor() as cursor:
        stage_lines(cursor, (row.line for row in latest.values()))
        cursor.execute(
            UPSERT_PAGE,
            {
                "participant": participant.pk,
                "low": min(latest),
                "high": max(latest),
                "source_timezone": source_timezone,
                "stamp": now(),
                "zone": participant.timezone,
                "fresh_after": now() - CRISIS_ALERT_MAX_AGE,
                **quality.sql_params(),
            },
        )
        inserted, written, days, fresh = cursor.fetchone()
    readings = [
        (dt.datetime.fromtimestamp(at, tz=dt.UTC), Decimal(systolic), Decimal(diastolic), int(flags))
        for at, systolic, diastolic, flags in fresh or ()
    ]
    return inserted, written, set(days or ()), readings


def _reference(participant_id, groups, source_timezone, not_before) -> PageStored:
    parsed = parse_groups(groups)
    readings = parsed.readings
    skipped = Counter(parsed.skipped)
    if not_before is not None:
        kept = [r for r in readings if r.measured_at >= not_before]
        skipped["before_participation"] += len(readings) - len(kept)
        readings = kept
    upsert = readings_upsert_api(
        participant_id=participant_id,
        readings=readings,
        source_timezone=source_timezone,
        non_bp_grpids=parsed.non_bp_grpids,
    )
    return PageStored(upsert=upsert, skipped=skipped)


def _check_collecting(participant_id: int) -> None:
    """The row lock orders this page with a withdrawal: one committed first is seen here, and one
    that comes later waits until this page is stored (then its purge sees the page's readings)."""
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant_id)
    if refusal := participant_collection_refusal(participant):
        raise CollectionRefused(refusal)


@transaction.atomic(savepoint=False)  # all or nothing with the caller's page transaction: no savepoint
def readings_store_api_page(
    *, participant_id: int, groups: list, source_timezone: str, not_before: dt.datetime | None = None
) -> PageStored:
    """Store a getmeas page's groups for the participant. Groups measured before `not_before` (the
    back-fill's start) are skipped. Idempotent: a replayed page changes nothing. Refuses
    (CollectionRefused, nothing stored) for a participant without consent or who withdrew."""
    _check_collecting(participant_id)
    if connection.vendor != "postgresql":
        return _reference(participant_id, groups, source_timezone, not_before)
    participant, history = _participant(participant_id)
    if not rollup_in_sql(participant.timezone):
        return _reference(participant_id, groups, source_timezone, not_before)
    parsed = parse_groups_copy(groups)
    rows, skipped = parsed.rows, Counter(parsed.skipped)
    if not_before is not None:
        kept = [row for row in rows if row.measured >= not_before.timestamp()]
        skipped["before_participation"] += len(rows) - len(kept)
        rows = kept
    latest = _latest(rows)
    result = UpsertResult()
    days: set[dt.date] = set()
    fresh: list = []
    if latest:
        inserted, written, days, fresh = _upsert(participant, latest, source_timezone)
        result.inserted, result.updated = inserted, written - inserted
        result.unchanged = len(latest) - written
    gone = [g for g in parsed.non_bp_grpids if g not in latest]
    if gone:
        result.deleted, deleted_from = readings_flag_deleted(participant_id=participant.pk, grpids=gone)
        zone = ZoneInfo(participant.timezone)
        days |= {at.astimezone(zone).date() for at in deleted_from}
    adherence_store_days(participant=participant, history=history, days=sorted(days))
    if fresh:
        alerts_check_readings(participant_id=participant.pk, readings=fresh)
    return PageStored(upsert=result, skipped=skipped)
