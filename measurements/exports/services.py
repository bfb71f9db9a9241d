"""Export jobs: create (permission-checked, audited), run (streamed, with progress), download (audited)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import ExportRights, Participant, Site, Study
from cohorts.scoping import memberships, user_can
from cohorts.services import audit_record
from measurements.guidelines import Guideline, guideline
from measurements.models import ExportJob
from measurements.monitoring.protocol import protocol_for_study, protocol_versions_described
from measurements.quality import plausibility_described

from . import EXPORT_ROLES, home_averages, sessions_file
from .columns import COLUMNS
from .copy_csv import CopyCsvRows
from .deidentify import Deidentifier, deidentified_columns, deidentified_extra_columns, manifest_entry
from .package import EXTRA_DICTIONARY, write_package
from .rows import DATES_ZONE, ExportFilters, Row, iter_rows, readings_for_export

logger = logging.getLogger(__name__)
PROGRESS_EVERY = 5000


def export_site_restriction(*, user, study: Study) -> Site | None:
    """The site a user's export role is limited to (None: the whole study)."""
    if user.is_superuser:
        return None
    membership = memberships(user, EXPORT_ROLES).filter(study=study).select_related("site").first()
    return membership.site if membership else None


def may_export(user, study: Study) -> bool:
    return bool(user and user.is_staff) and user_can(user, study, EXPORT_ROLES)


#: Date filters work on real dates: which readings a range selects would tell a de-identified-only user
#: the real dates. So they are not offered to them.
DATE_FILTERS_REVEAL = (
    "Date filters select by real dates, which de-identified data must not reveal: leave them empty "
    "(your role allows de-identified exports only)."
)


def deidentified_only(user, study: Study) -> bool:
    """Whether `user`'s export right in `study` is "de-identified only" (operators: full)."""
    if user is None or user.is_superuser:
        return False
    return (
        memberships(user, EXPORT_ROLES).filter(study=study).exclude(export_rights=ExportRights.FULL).exists()
    )


def _validate(study: Study, fmt: str, filters: ExportFilters) -> None:
    if fmt not in ExportJob.Format.values:
        raise ValidationError(f"Unknown export format {fmt!r}.")
    if filters.since and filters.until and filters.since > filters.until:
        raise ValidationError("The start date is after the end date.")
    unknown_sites = set(filters.sites) - set(Site.objects.filter(study=study).values_list("code", flat=True))
    if unknown_sites:
        raise ValidationError(f"Unknown site(s) for this study: {', '.join(sorted(unknown_sites))}.")
    unknown_statuses = set(filters.statuses) - set(Participant.Status.values)
    if unknown_statuses:
        raise ValidationError(f"Unknown participant status(es): {', '.join(sorted(unknown_statuses))}.")


def export_job_create(
    *,
    actor,
    study: Study,
    fmt: str,
    filters: ExportFilters,
    run: bool = True,
    via: str = "admin",
    deidentified: bool = False,
) -> ExportJob:
    """Create an audited job (runs in Celery after commit). `actor=None` is the operator's CLI.
    A requester limited to de-identified exports asking for full data is refused."""
    if actor is not None and not may_export(actor, study):
        raise PermissionDenied("You may not export this study.")
    if not deidentified and deidentified_only(actor, study):
        raise PermissionDenied("Your role in this study allows de-identified exports only.")
    if (filters.since or filters.until) and deidentified_only(actor, study):
        raise ValidationError(DATE_FILTERS_REVEAL)
    _validate(study, fmt, filters)
    site = export_site_restriction(user=actor, study=study) if actor is not None else None
    with transaction.atomic():
        job = ExportJob.objects.create(
            study=study,
            site=site,
            requested_by=actor,
            format=fmt,
            filters=filters.as_json(),
            deidentified=deidentified,
        )
        audit_record(
            actor=actor,
            action="export.created",
            study=study,
            target=str(job.uuid),
            detail={
                "format": fmt,
                "filters": filters.as_json(),
                "site": site.code if site else None,
                "via": via,
                "deidentified": deidentified,
            },
        )
        if run:
            from measurements.tasks import run_export

            transaction.on_commit(lambda: run_export.delay(job.pk))
    return job


#: A job still waiting this long after it was queued lost its task (a broker restarted without data).
EXPORT_PENDING_STALL = dt.timedelta(minutes=10)


def stalled_export_jobs(*, running_longer_than: float, at: dt.datetime | None = None):
    """Jobs whose task died: waiting since EXPORT_PENDING_STALL, or running for longer than the task's
    hard time limit permits (``running_longer_than`` seconds)."""
    at = at or now()
    return ExportJob.objects.filter(
        Q(status=ExportJob.Status.PENDING, queued_at__lt=at - EXPORT_PENDING_STALL)
        | Q(
            status=ExportJob.Status.RUNNING,
            started_at__lt=at - dt.timedelta(seconds=running_longer_than),
            queued_at__lt=at - dt.timedelta(seconds=running_longer_than),
        )
    ).order_by("pk")


def export_jobs_to_resume(*, running_longer_than: float) -> list[int]:
    """Ids of the stalled jobs, marked as queued again now (so each is re-queued once per period)."""
    with transaction.atomic():
        ids = list(
            stalled_export_jobs(running_longer_than=running_longer_than)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        ExportJob.objects.filter(pk__in=ids).update(queued_at=now())
    return ids


def export_job_path(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / job.study.slug / f"{job.uuid}.zip"


def export_rows(
    qs, fmt: str, *, progress=None, deidentifier: Deidentifier | None = None, profile: Guideline | None = None
):
    """The row source of an export: COPY-formatted CSV on PostgreSQL, else rows formatted in Python.
    `progress(rows_done)` is called every PROGRESS_EVERY rows (between COPYs for CSV). With a
    `deidentifier`, every row goes through it (in SQL on the COPY path); `profile` is the study's
    guideline (default: ACC/AHA 2017)."""
    profile = profile or guideline(None)
    if fmt == "csv" and connection.vendor == "postgresql":
        return CopyCsvRows(
            qs, progress=progress, every=PROGRESS_EVERY, deidentifier=deidentifier, profile=profile
        )
    rows = iter_rows(qs, profile=profile)
    if deidentifier is not None:
        rows = map(deidentifier.row, rows)
    if progress is None:
        return rows
    return _reporting(rows, progress)


def _reporting(rows: Iterable[Row], progress) -> Iterator[Row]:
    for done, row in enumerate(rows, start=1):
        yield row
        if done % PROGRESS_EVERY == 0:
            progress(done)


def _save_progress(job: ExportJob, done: int) -> None:
    job.rows_done = done
    job.save(update_fields=["rows_done"])


def _manifest(job: ExportJob) -> dict:
    return {
        "export_id": str(job.uuid),
        "study": job.study.slug,
        "created_at": job.created_at.isoformat(),
        "filters": {**job.filters, "dates": DATES_ZONE + ", both ends included"},
        "site_restriction": job.site.code if job.site else None,
        "pseudonymised": job.pseudonymised,
        "excluded": "readings marked as duplicates of another reading",
        "protocol_versions": protocol_versions_described(job.study_id),
        "deidentified": job.deidentified,
        **({"deidentification": manifest_entry()} if job.deidentified else {}),
        "plausibility": plausibility_described(),
        "sessions": {"gap_minutes": settings.READING_SESSION_GAP_MINUTES, "file": sessions_file.NAME},
    }


def _export_participants(job: ExportJob):
    filters = ExportFilters.from_json(job.filters)
    participants = Participant.objects.filter(study_id=job.study_id)
    if job.site_id is not None:
        participants = participants.filter(site_id=job.site_id)
    if filters.sites:
        participants = participants.filter(site__code__in=filters.sites)
    if filters.statuses:
        participants = participants.filter(status__in=filters.statuses)
    return participants


def _extras(job: ExportJob, qs, protocol, profile, deidentifier: Deidentifier | None = None) -> list:
    """The package's files besides the data file: sessions, average home BP (and its FHIR form).
    De-identified, their dates move by each participant's offset like the readings'."""

    def averages():
        found = home_averages.home_averages(
            study=job.study, protocol=protocol, profile=profile, participants=_export_participants(job)
        )
        return found if deidentifier is None else map(deidentifier.home_average, found)

    extras = [
        (sessions_file.NAME, partial(sessions_file.write_sessions_csv, qs, deidentifier=deidentifier)),
        (home_averages.CSV_NAME, lambda out: home_averages.write_csv(averages(), out)),
    ]
    if job.format == ExportJob.Format.FHIR:
        extras.append(
            (home_averages.FHIR_NAME, lambda out: home_averages.write_fhir(averages(), profile, out))
        )
    return extras


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Write the job's package. Idempotent: a finished job is left alone, a redelivered one restarts."""
    job = ExportJob.objects.select_related("study", "site", "requested_by").filter(pk=job_id).first()
    if job is None:
        logger.warning("export job %s no longer exists", job_id)
        return None
    if job.status == ExportJob.Status.DONE:
        return job
    qs = readings_for_export(
        study_id=job.study_id, filters=ExportFilters.from_json(job.filters), site_id=job.site_id
    )
    job.status, job.started_at, job.rows_done, job.error = ExportJob.Status.RUNNING, now(), 0, ""
    job.rows_total = qs.count()
    job.save(update_fields=["status", "started_at", "rows_done", "rows_total", "error"])
    path = export_job_path(job)
    deidentifier = Deidentifier.for_study(job.study) if job.deidentified else None
    protocol = protocol_for_study(job.study_id)
    profile = protocol.profile
    rows = export_rows(
        qs,
        job.format,
        progress=lambda done: _save_progress(job, done),
        deidentifier=deidentifier,
        profile=profile,
    )
    try:
        result = write_package(
            path,
            fmt=job.format,
            rows=rows,
            manifest={**_manifest(job), "guideline": profile.described()},
            columns=deidentified_columns() if deidentifier else COLUMNS,
            extra_columns=deidentified_extra_columns() if deidentifier else EXTRA_DICTIONARY,
            extras=_extras(job, qs, protocol, profile, deidentifier),
        )
    except Exception as exc:
        rows.close()  # release the server-side cursor now, not whenever the generator is collected
        logger.exception("export job %s failed", job.pk)
        job.status, job.finished_at = ExportJob.Status.FAILED, now()
        job.error = f"{type(exc).__name__}: the export could not be written."[:500]
        job.save(update_fields=["status", "finished_at", "error"])
        raise
    job.status, job.finished_at = ExportJob.Status.DONE, now()
    job.rows_done, job.rows_total = result.rows, result.rows
    job.file = str(path.relative_to(settings.MEDIA_ROOT))
    job.file_size, job.sha256 = result.size, result.sha256
    job.save(
        update_fields=["status", "finished_at", "rows_done", "rows_total", "file", "file_size", "sha256"]
    )
    _notify(job)
    return job


def _notify(job: ExportJob) -> None:
    user = job.requested_by
    if user is None or not user.email:
        return
    url = settings.PORTAL_BASE_URL + reverse("admin:measurements_exportjob_progress", args=[job.pk])
    send_mail(
        subject=f"Your {job.get_format_display()} export of {job.study.name} is ready",
        message=f"{job.rows_done} readings. Download it (sign-in required): {url}\nSHA-256: {job.sha256}\n",
        from_email=None,
        recipient_list=[user.email],
        fail_silently=True,
    )


def export_download_record(*, actor, job: ExportJob, via: str = "admin") -> Path:
    """Check the right to download, audit it, and return the file to send."""
    if actor is not None and not (actor.is_staff and user_can(actor, job, EXPORT_ROLES)):
        raise PermissionDenied("You may not download this export.")
    if not job.deidentified and deidentified_only(actor, job.study):
        raise PermissionDenied("Your role in this study allows de-identified exports only.")
    if job.status != ExportJob.Status.DONE or not job.file:
        raise ValidationError("This export is not ready.")
    path = Path(settings.MEDIA_ROOT) / job.file
    audit_record(
        actor=actor,
        action="export.downloaded",
        study=job.study,
        target=str(job.uuid),
        detail={"format": job.format, "rows": job.rows_done, "sha256": job.sha256, "via": via},
    )
    return path
