"""The export query: one SQL statement, streamed in chunks, joined columns (no per-row queries)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from cohorts.scoping import scoped
from measurements import quality
from measurements.classification import acc_aha_category, protocol_window
from measurements.guidelines import Guideline, guideline
from measurements.models import BloodPressureReading
from measurements.sessions import SessionTracker, in_sessions

from . import EXPORT_ROLES
from .columns import FLAG_NAMES

CHUNK_SIZE = 2000
DEFAULT_GUIDELINE = guideline(None)

FIELDS = (
    "pk",
    "participant__study__slug",
    "participant__site__code",
    "participant__code",
    "participant__timezone",
    "measured_at",
    "systolic",
    "diastolic",
    "pulse",
    "irregular_heartbeat",
    "source",
    "device_model",
    "device_id",
    "grpid",
    "attrib",
    *FLAG_NAMES,
    "quality_flags",
)

_DELETED, _AMBIGUOUS = FIELDS.index("deleted_upstream"), FIELDS.index("ambiguous_user")

#: How export date filters are read, by the form and by `export_study --since/--until` alike.
DATES_ZONE = "whole days in UTC (00:00 to 24:00 UTC, as in measured_at)"


@dataclass(frozen=True)
class ExportFilters:
    """What a job exports. Dates are inclusive UTC calendar days."""

    since: dt.date | None = None
    until: dt.date | None = None
    sites: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict) -> ExportFilters:
        return cls(
            since=dt.date.fromisoformat(data["since"]) if data.get("since") else None,
            until=dt.date.fromisoformat(data["until"]) if data.get("until") else None,
            sites=tuple(data.get("sites") or ()),
            statuses=tuple(data.get("statuses") or ()),
        )

    def dates_text(self) -> str:
        """The date range as staff read it: ISO days, and the zone they are in (always UTC)."""
        if self.since and self.until:
            return f"{self.since.isoformat()} to {self.until.isoformat()} inclusive, {DATES_ZONE}"
        if self.since:
            return f"from {self.since.isoformat()} on, {DATES_ZONE}"
        if self.until:
            return f"up to {self.until.isoformat()} inclusive, {DATES_ZONE}"
        return "all dates"

    def as_json(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "sites": list(self.sites),
            "statuses": list(self.statuses),
        }


@dataclass(frozen=True)
class Row:
    """One reading, typed. `values` follows COLUMNS; the rest is what FHIR needs besides."""

    pk: int
    values: tuple
    device_id: str
    measured_at: dt.datetime
    local: dt.datetime
    deidentified: bool = False
    #: Names the reading in FHIR resource ids; de-identified rows carry a keyed hash, not the pk.
    resource_key: str = ""
    #: The guideline category's label, with the guideline's name and version (FHIR).
    guideline_label: str = ""


def readings_for_export(
    *, study_id: int, filters: ExportFilters, site_id: int | None = None, user=None
) -> QuerySet[BloodPressureReading]:
    """The study's readings a job exports. With `user`, also limited to what their export roles allow.

    Readings marked as a duplicate of another (a CSV row later matched by the API) are left out.
    """
    qs = BloodPressureReading.objects.filter(participant__study_id=study_id, duplicate_of__isnull=True)
    if user is not None:
        qs = scoped(qs, user, EXPORT_ROLES)
    if site_id is not None:
        qs = qs.filter(participant__site_id=site_id)
    if filters.since:
        qs = qs.filter(measured_at__gte=dt.datetime.combine(filters.since, dt.time.min, tzinfo=dt.UTC))
    if filters.until:
        end = filters.until + dt.timedelta(days=1)
        qs = qs.filter(measured_at__lt=dt.datetime.combine(end, dt.time.min, tzinfo=dt.UTC))
    if filters.sites:
        qs = qs.filter(participant__site__code__in=filters.sites)
    if filters.statuses:
        qs = qs.filter(participant__status__in=filters.statuses)
    return qs.order_by("participant__code", "measured_at", "pk")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def utc_text(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_row(
    record: tuple, sessions: SessionTracker | None = None, profile: Guideline = DEFAULT_GUIDELINE
) -> Row:
    """One exported reading; `sessions` (fed in export order) gives its session id, `profile` (the
    study's guideline) its guideline_category."""
    (
        pk,
        study,
        site,
        code,
        tz,
        measured_at,
        sys,
        dia,
        pulse,
        irregular,
        source,
        model,
        device_id,
        grpid,
        attrib,
    ) = record[:15]
    flags = ";".join(name for name, on in zip(FLAG_NAMES, record[15:20], strict=True) if on)
    quality_flags = record[20]
    local = measured_at.astimezone(_zone(tz))
    category = None if quality_flags else profile.category(sys, dia)
    session = None
    if sessions is not None:
        session = sessions.feed(
            participant=code,
            measured_at=measured_at,
            systolic=sys,
            diastolic=dia,
            pulse=pulse,
            plausible=not quality_flags,
            eligible=in_sessions(deleted_upstream=record[_DELETED], ambiguous_user=record[_AMBIGUOUS]),
        )
    values = (
        study,
        site,
        code,
        utc_text(measured_at),
        local.isoformat(timespec="seconds"),
        sys,
        dia,
        pulse,
        irregular,
        source,
        model or None,
        grpid,
        attrib,
        flags or None,
        None if quality_flags else acc_aha_category(sys, dia),
        protocol_window(local),
        session,
        quality.codes_text(quality_flags),
        category,
    )
    label = f"{profile.name} {profile.version}: {profile.labels[category]}" if category else ""
    return Row(
        pk=pk, values=values, device_id=device_id, measured_at=measured_at, local=local, guideline_label=label
    )


def iter_rows(
    qs: QuerySet[BloodPressureReading],
    chunk_size: int = CHUNK_SIZE,
    *,
    profile: Guideline = DEFAULT_GUIDELINE,
) -> Iterator[Row]:
    """`qs` in export order (`readings_for_export`): session ids follow from it."""
    sessions = SessionTracker()
    for record in qs.values_list(*FIELDS).iterator(chunk_size=chunk_size):
        yield to_row(record, sessions, profile)
