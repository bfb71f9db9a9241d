"""Store one getmeas page: parse, upsert by (participant, grpid), refresh the touched days' rollup,
check for crisis readings — what the sync does per page, in the caller's transaction.

On PostgreSQL the page goes as COPY text (`parsing_copy`) into a temporary stage and one statement
does the rest of the writing: it finds the stored rows whose `modified` changed (their old day needs a
refresh too), upserts, and hands back only what the monitoring needs — counts, the touched local days
and the fresh valid readings for the crisis check — instead of a row per reading. The rollup is one
more statement (`adherence_sql`). Before (bench/ingest.py, 200k groups): ~8,500 rows/s with objects
per reading and the rollup recomputed in Python; the numbers after are in the commit that added this.
Elsewhere (the SQLite demo), or for a zone PostgreSQL does not know, the reference path
(`parsing.parse_groups` + `services.readings_upsert_api`) does the same work; tests compare both.
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

from ..models import BloodPressureReading, StudyProtocol
from ..monitoring.adherence import adherence_store_days
from ..monitoring.adherence_sql import rollup_in_sql
from ..monitoring.alerts import CRISIS_ALERT_MAX_AGE, alerts_check_readings
from ..monitoring.protocol import protocol_for_study
from .copy_lines import COLUMNS, CopyRow, parse_groups_copy
from .parse import parse_groups
from .upsert import UpsertResult, readings_upsert_api

STAGE = "_stage_api_readings"
STAGE_TYPES = {
    "grpid": "bigint", "measured": "bigint", "systolic": "numeric", "diastolic": "numeric",
    "pulse": "numeric", "attrib": "integer", "device_id": "text", "device_model": "text",
    "device_model_id": "integer", "raw": "jsonb", "created": "bigint", "modified": "bigint",
    "manual_entry": "boolean", "ambiguous_user": "boolean",
}  # fmt: skip
CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({', '.join(f'{c} {STAGE_TYPES[c]}' for c in COLUMNS)}) "
    "ON COMMIT DELETE ROWS"
)
STAGE_EXISTS = f"SELECT to_regclass('pg_temp.{STAGE}') IS NOT NULL"
COPY_STAGE = f"COPY {STAGE} ({', '.join(COLUMNS)}) FROM STDIN"
# All parts of one statement see the rows as they were before it: `moved` reads the stored versions
# that `up` replaces, and `emptied` leaves the stage empty for the next page of the same transaction.
UPSERT = f"""
WITH moved AS (
    SELECT r.measured_at FROM measurements_bloodpressurereading r JOIN {STAGE} s ON s.grpid = r.grpid
    WHERE r.participant_id = %(participant)s AND r.grpid BETWEEN %(low)s AND %(high)s
        AND r.upstream_modified IS DISTINCT FROM to_timestamp(s.modified)
), up AS (
    INSERT INTO measurements_bloodpressurereading AS t (
        participant_id, grpid, source, measured_at, source_timezone, systolic, diastolic, pulse, attrib,
        device_id, device_model, device_model_id, raw, upstream_created, upstream_modified, manual_entry,
        ambiguous_user, ingested_at, updated_at, edited_upstream, deleted_upstream, local_time_ambiguous)
    SELECT %(participant)s, grpid, CASE WHEN manual_entry THEN 'manual' ELSE 'api' END,
        to_timestamp(measured), %(source_timezone)s, systolic, diastolic, pulse, attrib, device_id,
        device_model, device_model_id, raw,
        to_timestamp(created), to_timestamp(modified), manual_entry, ambiguous_user,
        %(stamp)s, %(stamp)s, false, false, false
    FROM {STAGE}
    ON CONFLICT (participant_id, grpid) DO UPDATE SET
        source = EXCLUDED.source, measured_at = EXCLUDED.measured_at,
        source_timezone = EXCLUDED.source_timezone, systolic = EXCLUDED.systolic,
        diastolic = EXCLUDED.diastolic, pulse = EXCLUDED.pulse, attrib = EXCLUDED.attrib,
        device_id = EXCLUDED.device_id, device_model = EXCLUDED.device_model,
        device_model_id = EXCLUDED.device_model_id, raw = EXCLUDED.raw,
        upstream_created = EXCLUDED.upstream_created, upstream_modified = EXCLUDED.upstream_modified,
        manual_entry = EXCLUDED.manual_entry, ambiguous_user = EXCLUDED.ambiguous_user,
        updated_at = EXCLUDED.updated_at, edited_upstream = true, deleted_upstream = false
    WHERE t.upstream_modified IS DISTINCT FROM EXCLUDED.upstream_modified
    RETURNING (xmax = 0) AS inserted, measured_at, systolic, diastolic, ambiguous_user
), emptied AS (
    DELETE FROM {STAGE}
)
SELECT
    (SELECT count(*) FILTER (WHERE inserted) FROM up),
    (SELECT count(*) FROM up),
    (SELECT array_agg(DISTINCT (c.at AT TIME ZONE %(zone)s)::date)
        FROM (SELECT measured_at FROM up UNION ALL SELECT measured_at FROM moved) AS c(at)),
    (SELECT json_agg(json_build_array(
            extract(epoch FROM measured_at)::bigint, systolic::text, diastolic::text))
        FROM up WHERE NOT ambiguous_user AND measured_at >= %(fresh_after)s)
"""  # noqa: S608 (the only interpolation is the stage's constant name)


@dataclass
class PageStored:
    upsert: UpsertResult
    skipped: Counter


def _participant(participant_id: int) -> tuple[Participant, StudyProtocol]:
    """The participant with its study, and the study's protocol (or the default one)."""
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    return participant, protocol_for_study(participant.study_id)


def _latest(rows: list[CopyRow]) -> dict[int, CopyRow]:
    """A group repeated within the page counts once: the most recently modified version wins
    (as `services._latest_per_grpid`)."""
    latest: dict[int, CopyRow] = {}
    for row in rows:
        current = latest.get(row.grpid)
        if current is None or row.recency >= current.recency:
            latest[row.grpid] = row
    return latest


def _upsert(participant: Participant, latest: dict[int, CopyRow], source_timezone: str):
    """COPY the page into the stage and upsert it → (inserted, written, touched days, fresh readings)."""
    with connection.cursor() as cursor:
        # `CREATE … IF NOT EXISTS` costs ~0.4 ms a page; asking whether it exists ~0.03 ms. (A flag in
        # Python would go stale when the transaction that created the table rolls back.)
        cursor.execute(STAGE_EXISTS)
        if not cursor.fetchone()[0]:
            cursor.execute(CREATE_STAGE)
        with cursor.cursor.copy(COPY_STAGE) as copy:
            copy.write("".join(row.line for row in latest.values()))
        cursor.execute(
            UPSERT,
            {
                "participant": participant.pk,
                "low": min(latest),
                "high": max(latest),
                "source_timezone": source_timezone,
                "stamp": now(),
                "zone": participant.timezone,
                "fresh_after": now() - CRISIS_ALERT_MAX_AGE,
            },
        )
        inserted, written, days, fresh = cursor.fetchone()
    readings = [
        (dt.datetime.fromtimestamp(at, tz=dt.UTC), Decimal(systolic), Decimal(diastolic))
        for at, systolic, diastolic in fresh or ()
    ]
    return inserted, written, set(days or ()), readings


def _flag_deleted(participant: Participant, grpids: list[int]) -> tuple[int, set[dt.date]]:
    """Groups that no longer carry a BP reading: flag the stored ones, return their days."""
    rows = BloodPressureReading.objects.filter(
        participant_id=participant.pk, grpid__in=grpids, deleted_upstream=False
    )
    zone = ZoneInfo(participant.timezone)
    days = {at.astimezone(zone).date() for at in rows.values_list("measured_at", flat=True)}
    return rows.update(deleted_upstream=True, edited_upstream=True, updated_at=now()), days


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
    participant, protocol = _participant(participant_id)
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
        result.deleted, deleted_days = _flag_deleted(participant, gone)
        days |= deleted_days
    adherence_store_days(participant=participant, protocol=protocol, days=sorted(days))
    if fresh:
        alerts_check_readings(participant_id=participant.pk, readings=fresh)
    return PageStored(upsert=result, skipped=skipped)
