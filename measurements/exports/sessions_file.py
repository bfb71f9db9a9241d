"""The package's `sessions.csv`: one row per measurement session (`measurements.sessions`) of the
exported readings, with its mean and reading counts. Streamed: one query over the export's readings in
export order (a few columns, no formatting), sessions closed as the next one starts — flat memory."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import TYPE_CHECKING, BinaryIO

from django.db.models import QuerySet

from measurements.sessions import Session, SessionTracker, in_sessions, mean

from .columns import NEVER_EMPTY, Column
from .formatting import csv_cell
from .rows import CHUNK_SIZE, utc_text

if TYPE_CHECKING:
    from .deidentify import Deidentifier

NAME = "sessions.csv"
_FIELDS = (
    "participant__study__slug",
    "participant__code",
    "measured_at",
    "systolic",
    "diastolic",
    "pulse",
    "quality_flags",
    "deleted_upstream",
    "ambiguous_user",
)
_COMPUTED = "computed by the portal"
COLUMNS: tuple[Column, ...] = (
    Column("study", "Study slug", "text", unknown=NEVER_EMPTY, withings_source=_COMPUTED, fhir_element="-"),
    Column(
        "participant", "Pseudonymous participant code", "text", unknown=NEVER_EMPTY,
        withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "session_id", "The session, as in the readings file's session_id", "text", unknown=NEVER_EMPTY,
        withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "started_at", "First reading of the session, UTC", "ISO 8601 date-time with Z", unknown=NEVER_EMPTY,
        withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "ended_at", "Last reading of the session, UTC", "ISO 8601 date-time with Z", unknown=NEVER_EMPTY,
        withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "reading_count", "Readings in the session (implausible ones included)", "integer",
        unknown=NEVER_EMPTY, withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "averaged_count", "Plausible readings of the session: those the means are taken over", "integer",
        unknown=NEVER_EMPTY, withings_source=_COMPUTED, fhir_element="-",
    ),
    Column(
        "systolic_mean_mmhg", "Mean systolic of the plausible readings, to 0.1 (half up)", "decimal",
        unit="mmHg", unknown="empty: no plausible reading in the session", withings_source=_COMPUTED,
        fhir_element="-",
    ),
    Column(
        "diastolic_mean_mmhg", "Mean diastolic of the plausible readings, to 0.1 (half up)", "decimal",
        unit="mmHg", unknown="empty: no plausible reading in the session", withings_source=_COMPUTED,
        fhir_element="-",
    ),
    Column(
        "pulse_mean_bpm", "Mean pulse of the plausible readings that have one, to 0.1 (half up)", "decimal",
        unit="beats/min", unknown="empty: no pulse measured", withings_source=_COMPUTED, fhir_element="-",
    ),
)  # fmt: skip


def _row(study: str, session: Session) -> list:
    return [
        study,
        session.participant,
        session.id,
        utc_text(session.start),
        utc_text(session.end),
        session.readings,
        session.averaged,
        mean(session.systolic, session.averaged),
        mean(session.diastolic, session.averaged),
        mean(session.pulse, session.pulses),
    ]


def write_sessions_csv(qs: QuerySet, out: BinaryIO, *, deidentifier: Deidentifier | None = None) -> int:
    """`qs`: the export's readings (`rows.readings_for_export`, in its order). Returns the sessions.
    With a `deidentifier`, each session's times (and so its id) move by the participant's offset."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([c.name for c in COLUMNS])
    tracker = SessionTracker(keep=True)
    count = 0
    study = ""

    def flush(sessions: list[Session]) -> None:
        nonlocal count
        for session in sessions:
            if deidentifier is not None:
                shift = deidentifier.shift(session.participant)
                session = dataclasses.replace(session, start=session.start + shift, end=session.end + shift)
            writer.writerow([csv_cell(v) for v in _row(study, session)])
            count += 1

    for slug, code, at, sys, dia, pulse, flags, deleted, ambiguous in qs.values_list(*_FIELDS).iterator(
        chunk_size=CHUNK_SIZE
    ):
        study = slug
        tracker.feed(
            participant=code,
            measured_at=at,
            systolic=sys,
            diastolic=dia,
            pulse=pulse,
            plausible=not flags,
            eligible=in_sessions(deleted_upstream=deleted, ambiguous_user=ambiguous),
        )
        flush(tracker.drain())
    flush(tracker.finish())
    text.flush()
    text.detach()
    return count
