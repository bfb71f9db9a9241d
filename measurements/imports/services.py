"""Import a participant's Withings CSV export: all or nothing, deduplicated, audited.

Dedupe key (docs/withings-api.md §7): (participant, UTC instant to the second, systolic, diastolic,
pulse). Rows already stored (from the API or an earlier import) and rows repeated within the file
are skipped; pulse-only rows and readings measured before the participation start (the rule of the
API paths too) are skipped and reported. The file streams through (`plan.py`,
`writer.py`): a 5 MB upload is imported without holding an object per row.
"""

from __future__ import annotations

import zoneinfo
from typing import BinaryIO

from django.db import transaction

from cohorts.enrollment import participant_collection_refusal
from cohorts.models import Participant
from cohorts.selectors import participation_start
from cohorts.services import audit_record
from measurements.models import BloodPressureReading
from measurements.monitoring.adherence import adherence_refresh_instants

from .archive import ImportFileError, bp_csv_bytes
from .plan import ImportPlan, csv_plan_stream
from .writer import ReadingsWriter


def _key(measured_at, systolic, diastolic, pulse) -> tuple:
    return (measured_at.replace(microsecond=0), systolic, diastolic, pulse)


def resolve_timezone(participant: Participant, timezone: str | None) -> str:
    name = timezone or participant.timezone
    if name not in zoneinfo.available_timezones():
        raise ImportFileError(f"Unknown time zone {name!r}.")
    return name


def withings_csv_plan(
    *, participant: Participant, data: bytes | BinaryIO, timezone: str | None = None
) -> ImportPlan:
    """Read and check the whole upload and say what an import would do. Writes nothing."""
    if refusal := participant_collection_refusal(participant):
        raise ImportFileError(refusal)
    tz = resolve_timezone(participant, timezone)
    return csv_plan_stream(
        participant_id=participant.pk,
        csv_data=bp_csv_bytes(data),
        timezone=tz,
        not_before=participation_start(participant),
    )


def withings_csv_import(
    *,
    actor,
    participant: Participant,
    data: bytes | BinaryIO,
    timezone: str | None = None,
    filename: str = "",
    via: str = "admin",
) -> ImportPlan:
    """Import the upload in one transaction, or nothing (ImportFileError) if any part of it is bad."""
    with transaction.atomic():
        # One import per participant at a time: the dedupe below then sees every committed row.
        participant = Participant.objects.select_for_update().select_related("study").get(pk=participant.pk)
        if refusal := participant_collection_refusal(participant):
            raise ImportFileError(refusal)
        tz = resolve_timezone(participant, timezone)
        writer = ReadingsWriter(
            participant_id=participant.pk, participant_timezone=participant.timezone, source_timezone=tz
        )
        plan = csv_plan_stream(
            participant_id=participant.pk,
            csv_data=bp_csv_bytes(data),
            timezone=tz,
            not_before=participation_start(participant),
            on_new=writer.add,
        )
        writer.finish()
        plan.imported = len(plan.added_lines)
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
