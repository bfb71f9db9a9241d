"""Import a participant's Withings CSV export: all or nothing, deduplicated, audited.

Dedupe key (withings-api.md §7): (participant, UTC instant to the second, systolic, diastolic,
pulse). Rows already stored (from the API or an earlier import) and rows repeated within the file
are skipped; pulse-only rows are skipped and reported.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field

from django.db import transaction

from cohorts.enrollment import participant_collection_refusal
from cohorts.models import Participant
from cohorts.services import audit_record
from measurements.models import BloodPressureReading
from measurements.monitoring.adherence import adherence_refresh_instants
from measurements.monitoring.ingest import readings_changed

from .archive import ImportFileError, bp_csv_bytes
from .bp_csv import CsvReading, parse_bp_csv


@dataclass
class ImportPlan:
    timezone: str
    to_add: list[CsvReading] = field(default_factory=list)
    already_present: list[CsvReading] = field(default_factory=list)
    duplicate_in_file: list[CsvReading] = field(default_factory=list)
    pulse_only: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    rows: int = 0
    imported: int = 0

    @property
    def flagged(self) -> list[CsvReading]:
        return [r for r in self.to_add if r.dst]

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "added": len(self.to_add),
            "already_present": len(self.already_present),
            "duplicate_in_file": len(self.duplicate_in_file),
            "pulse_only": len(self.pulse_only),
            "empty": len(self.empty),
            "flagged_local_time": len(self.flagged),
        }


def _key(measured_at, systolic, diastolic, pulse) -> tuple:
    return (measured_at.replace(microsecond=0), systolic, diastolic, pulse)


def _existing_keys(participant_id: int, readings: list[CsvReading]) -> set[tuple]:
    if not readings:
        return set()
    instants = [r.measured_at for r in readings]
    rows = BloodPressureReading.objects.filter(
        participant_id=participant_id, measured_at__gte=min(instants), measured_at__lte=max(instants)
    ).values_list("measured_at", "systolic", "diastolic", "pulse")
    return {_key(*row) for row in rows.iterator(chunk_size=2000)}


def resolve_timezone(participant: Participant, timezone: str | None) -> str:
    name = timezone or participant.timezone
    if name not in zoneinfo.available_timezones():
        raise ImportFileError(f"Unknown time zone {name!r}.")
    return name


def withings_csv_plan(*, participant: Participant, data: bytes, timezone: str | None = None) -> ImportPlan:
    """Read and check the whole upload and say what an import would do. Writes nothing."""
    if refusal := participant_collection_refusal(participant):
        raise ImportFileError(refusal)
    plan = ImportPlan(timezone=resolve_timezone(participant, timezone))
    parsed = parse_bp_csv(bp_csv_bytes(data), timezone=plan.timezone)
    plan.rows, plan.pulse_only, plan.empty = parsed.rows, parsed.pulse_only, parsed.empty
    stored = _existing_keys(participant.pk, parsed.readings)
    seen: set[tuple] = set()
    for reading in parsed.readings:
        key = _key(*reading.key)
        if key in stored:
            plan.already_present.append(reading)
        elif key in seen:
            plan.duplicate_in_file.append(reading)
        else:
            seen.add(key)
            plan.to_add.append(reading)
    return plan


def _reading(participant_id: int, tz: str, r: CsvReading) -> BloodPressureReading:
    return BloodPressureReading(
        participant_id=participant_id,
        measured_at=r.measured_at,
        source_timezone=tz,
        systolic=r.systolic,
        diastolic=r.diastolic,
        pulse=r.pulse,
        irregular_heartbeat=None,
        source=BloodPressureReading.Source.CSV,
        raw={"csv": r.raw, "line": r.line, **({"dst": r.dst} if r.dst else {})},
        local_time_ambiguous=bool(r.dst),
    )


def withings_csv_import(
    *,
    actor,
    participant: Participant,
    data: bytes,
    timezone: str | None = None,
    filename: str = "",
    via: str = "admin",
) -> ImportPlan:
    """Import the upload in one transaction, or nothing (ImportFileError) if any part of it is bad."""
    with transaction.atomic():
        # One import per participant at a time: the dedupe below then sees every committed row.
        participant = Participant.objects.select_for_update().select_related("study").get(pk=participant.pk)
        plan = withings_csv_plan(participant=participant, data=data, timezone=timezone)
        added = BloodPressureReading.objects.bulk_create(
            [_reading(participant.pk, plan.timezone, r) for r in plan.to_add], batch_size=2000
        )
        plan.imported = len(plan.to_add)
        readings_changed(
            participant_id=participant.pk,
            instants=[r.measured_at for r in added],
            new_values=[(r.measured_at, r.systolic, r.diastolic, not r.ambiguous_user) for r in added],
        )
        audit_record(
            actor=actor,
            action="import.withings_csv",
            participant=participant,
            target=participant.code,
            detail={**plan.counts(), "timezone": plan.timezone, "file": filename[:100], "via": via},
        )
    return plan


def csv_duplicates_link(*, participant_id: int) -> int:
    """Mark CSV readings that the API has since delivered as `duplicate_of` the API reading.

    Call after an API sync (the API reading carries grpid, device and attrib: it is the one kept).
    Returns how many CSV readings were marked. Idempotent.
    """
    csv_rows = list(
        BloodPressureReading.objects.filter(
            participant_id=participant_id, source=BloodPressureReading.Source.CSV, duplicate_of__isnull=True
        ).values_list("pk", "measured_at", "systolic", "diastolic", "pulse")
    )
    if not csv_rows:
        return 0
    instants = [row[1] for row in csv_rows]
    api = BloodPressureReading.objects.filter(
        participant_id=participant_id,
        grpid__isnull=False,
        measured_at__gte=min(instants),
        measured_at__lte=max(instants),
    ).values_list("pk", "measured_at", "systolic", "diastolic", "pulse")
    by_key = {_key(*row[1:]): row[0] for row in api}
    marked, moved = 0, []
    with transaction.atomic():
        for pk, *values in csv_rows:
            original = by_key.get(_key(*values))
            if original is not None and BloodPressureReading.objects.filter(
                pk=pk, duplicate_of__isnull=True
            ).update(duplicate_of_id=original):
                marked += 1
                moved.append(values[0])
        adherence_refresh_instants(participant_id=participant_id, instants=moved)
    return marked
