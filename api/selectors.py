"""Reads for the API: the studies a user may pull, and one keyset page of a study's readings.

Pages are keyset-paginated on (measured_at, id) — stable while readings arrive, and each page costs
the same wherever it is (index `reading_time_id`). The cursor is encrypted (Fernet): it names a real
instant, which a de-identified caller must not read, and it cannot be forged or moved to another
study or filter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db.models import Max, OuterRef, Q, QuerySet, Subquery

from cohorts.models import Participant, Site, Study
from cohorts.scoping import scoped
from core.crypto import DecryptionError, decrypt_str, encrypt_str
from measurements.exports import EXPORT_ROLES
from measurements.exports.deidentify import Deidentifier
from measurements.exports.rows import FIELDS, ExportFilters, Row, readings_for_export, to_row
from measurements.exports.services import deidentified_only, export_site_restriction
from measurements.models import BloodPressureReading


class BadRequest(ValueError):
    """The caller's parameters are wrong: answered with 400 and the message."""


def api_studies(user) -> QuerySet[Study]:
    """The studies whose readings `user` may pull (their export roles)."""
    return scoped(Study.objects.all(), user, EXPORT_ROLES).order_by("slug")


def api_study(user, slug: str) -> Study | None:
    return api_studies(user).filter(slug=slug).first()


def gives_deidentified(user, study: Study, *, token_deidentified_only: bool, asked: bool) -> bool:
    return asked or token_deidentified_only or deidentified_only(user, study)


def parse_instant(text: str, *, end: bool) -> dt.datetime:
    """A date (a whole UTC day: since = its start, until = the next day's start) or an ISO 8601
    date-time with an offset (used as given)."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time.min, tzinfo=dt.UTC)
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{text!r} is not a date (YYYY-MM-DD) nor an ISO 8601 date-time.") from exc
    if instant.tzinfo is None:
        raise BadRequest(f"{text!r} has no UTC offset: add Z or +hh:mm.")
    return instant


@dataclass(frozen=True)
class ReadingsQuery:
    study: Study
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    site: str | None = None
    deidentified: bool = False

    def key(self) -> str:
        """What a cursor is bound to."""
        parts = [self.study.pk, self.since, self.until, self.site, self.deidentified]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def encode_cursor(query: ReadingsQuery, row: Row) -> str:
    return encrypt_str(json.dumps({"q": query.key(), "m": row.measured_at.isoformat(), "i": row.pk}))


def decode_cursor(query: ReadingsQuery, cursor: str) -> tuple[dt.datetime, int]:
    try:
        data = json.loads(decrypt_str(cursor))
        position = dt.datetime.fromisoformat(data["m"]), int(data["i"])
    except (DecryptionError, ValueError, KeyError, TypeError) as exc:
        raise BadRequest("The cursor is not valid: start again without one.") from exc
    if data.get("q") != query.key():
        raise BadRequest("The cursor belongs to another query: keep the same parameters while paging.")
    return position


def study_last_reading_at(study: Study) -> dt.datetime | None:
    """The study's latest reading time: one probe of (participant, measured_at) per participant."""
    latest = BloodPressureReading.objects.filter(participant=OuterRef("pk")).order_by("-measured_at")
    return (
        Participant.objects.filter(study=study)
        .annotate(latest_at=Subquery(latest.values("measured_at")[:1]))
        .aggregate(value=Max("latest_at"))["value"]
    )


@dataclass
class ReadingsPage:
    rows: list[Row]
    next_cursor: str | None


def readings_page(*, user, query: ReadingsQuery, cursor: str | None, limit: int) -> ReadingsPage:
    """One page of the study's readings visible to `user`, in (measured_at, id) order."""
    study = query.study
    site = export_site_restriction(user=user, study=study)
    sites: tuple[str, ...] = ()
    if query.site:
        if not Site.objects.filter(study=study, code=query.site).exists():
            raise BadRequest(f"Unknown site {query.site!r} for this study.")
        sites = (query.site,)
    qs = readings_for_export(
        study_id=study.pk, filters=ExportFilters(sites=sites), site_id=site.pk if site else None, user=user
    )
    if query.since:
        qs = qs.filter(measured_at__gte=query.since)
    if query.until:
        qs = qs.filter(measured_at__lt=query.until)
    # The index walk stops at the study's last reading: without this bound, the last page (which asks
    # for one row more than it gets) would walk every later reading of every other study.
    last = study_last_reading_at(study)
    if last is None:
        return ReadingsPage(rows=[], next_cursor=None)
    qs = qs.filter(measured_at__lte=last)
    if cursor:
        at, pk = decode_cursor(query, cursor)
        # The first condition gives the index scan its start; the second skips the rows already sent.
        qs = qs.filter(Q(measured_at__gte=at), Q(measured_at__gt=at) | Q(pk__gt=pk))
    records = list(qs.order_by("measured_at", "pk").values_list(*FIELDS)[: limit + 1])
    rows = [to_row(r) for r in records[:limit]]
    next_cursor = encode_cursor(query, rows[-1]) if len(records) > limit else None
    if query.deidentified:
        key = Deidentifier.for_study(study)
        rows = [key.row(r) for r in rows]
    return ReadingsPage(rows=rows, next_cursor=next_cursor)
