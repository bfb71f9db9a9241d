"""Bulk upsert of parsed API readings, idempotent by (participant, grpid): the reference path of
`store` (and the SQLite demo's)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.timezone import now

from cohorts.bulk import copy_upsert

from ..models import BloodPressureReading
from .changes import readings_changed
from .parse import ParsedReading

VALUE_FIELDS = (
    "measured_at",
    "source_timezone",
    "systolic",
    "diastolic",
    "pulse",
    "attrib",
    "device_id",
    "device_model",
    "device_model_id",
    "raw",
    "upstream_created",
    "upstream_modified",
    "manual_entry",
    "ambiguous_user",
)
BATCH = 2000


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        return self


def _latest_per_grpid(readings: Iterable[ParsedReading]) -> dict[int, ParsedReading]:
    """A group repeated across pages counts once: the most recently modified version wins."""
    latest: dict[int, ParsedReading] = {}
    for reading in readings:
        current = latest.get(reading.grpid)
        if current is None or (reading.upstream_modified or reading.measured_at) >= (
            current.upstream_modified or current.measured_at
        ):
            latest[reading.grpid] = reading
    return latest


def _row(participant_id: int, reading: ParsedReading, source_timezone: str) -> BloodPressureReading:
    return BloodPressureReading(
        participant_id=participant_id,
        source=BloodPressureReading.Source.MANUAL
        if reading.manual_entry
        else BloodPressureReading.Source.API,
        grpid=reading.grpid,
        source_timezone=source_timezone,
        measured_at=reading.measured_at,
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        pulse=reading.pulse,
        attrib=reading.attrib,
        device_id=reading.device_id,
        device_model=reading.device_model,
        device_model_id=reading.device_model_id,
        raw=reading.raw,
        upstream_created=reading.upstream_created,
        upstream_modified=reading.upstream_modified,
        manual_entry=reading.manual_entry,
        ambiguous_user=reading.ambiguous_user,
    )


@transaction.atomic
def readings_upsert_api(
    *,
    participant_id: int,
    readings: Iterable[ParsedReading],
    source_timezone: str = "",
    non_bp_grpids: Iterable[int] = (),
) -> UpsertResult:
    """Insert new groups, update groups modified upstream (flagged), leave the rest untouched.

    Callers serialise per participant (the sync holds the connection's lock); the insert also
    resolves conflicts in the database, so a concurrent duplicate can never create a second row.
    On PostgreSQL the rows go through COPY into a temporary table and one
    ``INSERT … ON CONFLICT DO UPDATE … WHERE modified changed`` (bench/ingest.py); elsewhere
    (the SQLite demo) through the ORM's bulk operations.
    """
    latest = _latest_per_grpid(readings)
    upsert = _upsert_copy if connection.vendor == "postgresql" else _upsert_orm
    result, moved_from, written = upsert(participant_id, latest, source_timezone)
    gone = [g for g in non_bp_grpids if g not in latest]
    if gone:
        gone_rows = BloodPressureReading.objects.filter(
            participant_id=participant_id, grpid__in=gone, deleted_upstream=False
        )
        moved_from += gone_rows.values_list("measured_at", flat=True)
        result.deleted = gone_rows.update(deleted_upstream=True, edited_upstream=True, updated_at=now())
    readings_changed(
        participant_id=participant_id,
        instants=[*moved_from, *(w[0] for w in written)],
        new_values=written,
    )
    return result


# (measured_at, systolic, diastolic, valid) of every row inserted or updated: for the monitoring hooks.
Written = list[tuple]


def _upsert_orm(participant_id: int, latest: dict[int, ParsedReading], source_timezone: str):
    result = UpsertResult()
    grpids = list(latest)
    existing: dict[int, tuple[int, object]] = {}
    moved_from = []  # measured_at of stored rows that change (their day's rollup changes too)
    for start in range(0, len(grpids), BATCH):
        chunk = grpids[start : start + BATCH]
        for grpid, pk, modified, measured_at in BloodPressureReading.objects.filter(
            participant_id=participant_id, grpid__in=chunk
        ).values_list("grpid", "pk", "upstream_modified", "measured_at"):
            existing[grpid] = (pk, modified)
            if modified != latest[grpid].upstream_modified:
                moved_from.append(measured_at)
    to_insert, to_update = [], []
    stamp = now()
    for grpid, reading in latest.items():
        row = _row(participant_id, reading, source_timezone)
        if grpid not in existing:
            to_insert.append(row)
            continue
        pk, stored_modified = existing[grpid]
        if stored_modified == reading.upstream_modified:
            result.unchanged += 1
            continue
        row.pk = pk
        row.edited_upstream = True
        row.deleted_upstream = False
        row.updated_at = stamp
        to_update.append(row)
    if to_insert:
        BloodPressureReading.objects.bulk_create(
            to_insert,
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["participant", "grpid"],
            update_fields=[*VALUE_FIELDS, "updated_at"],
        )
        result.inserted = len(to_insert)
    if to_update:
        BloodPressureReading.objects.bulk_update(
            to_update,
            [*VALUE_FIELDS, "edited_upstream", "deleted_upstream", "updated_at"],
            batch_size=BATCH,
        )
        result.updated = len(to_update)
    written = [
        (r.measured_at, r.systolic, r.diastolic, not r.ambiguous_user) for r in (*to_insert, *to_update)
    ]
    return result, moved_from, written


COPY_FIELDS = ("grpid", "source", *VALUE_FIELDS)
_MOVED = """
SELECT r.measured_at FROM measurements_bloodpressurereading r
JOIN unnest(%s::bigint[], %s::timestamptz[]) AS s(grpid, modified) ON r.grpid = s.grpid
WHERE r.participant_id = %s AND r.upstream_modified IS DISTINCT FROM s.modified
"""


def _copy_row(r: ParsedReading, source: str, source_timezone: str) -> tuple:
    """A reading as a row of COPY_FIELDS."""
    return (
        r.grpid, source, r.measured_at, source_timezone, r.systolic, r.diastolic, r.pulse, r.attrib,
        r.device_id, r.device_model, r.device_model_id, json.dumps(r.raw), r.upstream_created,
        r.upstream_modified, r.manual_entry, r.ambiguous_user,
    )  # fmt: skip


def _upsert_copy(participant_id: int, latest: dict[int, ParsedReading], source_timezone: str):
    """COPY into a stage, then INSERT … ON CONFLICT DO UPDATE only where `modified` changed."""
    result = UpsertResult()
    if not latest:
        return result, [], []
    with connection.cursor() as cursor:  # stored rows about to change: their days' rollups change too
        cursor.execute(_MOVED, [list(latest), [r.upstream_modified for r in latest.values()], participant_id])
        moved_from = [row[0] for row in cursor.fetchall()]
    api, manual = BloodPressureReading.Source.API.value, BloodPressureReading.Source.MANUAL.value
    stamp = now()
    constants = {
        "participant": participant_id,
        "ingested_at": stamp,
        "updated_at": stamp,
        "edited_upstream": False,
        "deleted_upstream": False,
        "local_time_ambiguous": False,
    }
    returned = copy_upsert(
        BloodPressureReading,
        fields=COPY_FIELDS,
        rows=(_copy_row(r, manual if r.manual_entry else api, source_timezone) for r in latest.values()),
        conflict=("participant", "grpid"),
        update=(*COPY_FIELDS[1:], "updated_at"),
        constants=constants,
        assign={"edited_upstream": "true", "deleted_upstream": "false"},
        only_if="t.upstream_modified IS DISTINCT FROM EXCLUDED.upstream_modified",
        returning="(xmax = 0), measured_at, systolic, diastolic, NOT ambiguous_user",
    )
    result.inserted = sum(1 for row in returned if row[0])
    result.updated = len(returned) - result.inserted
    result.unchanged = len(latest) - len(returned)
    return result, moved_from, [row[1:] for row in returned]
