"""Staff pages for exports and CSV imports. Mounted under the admin (admin_view: login + staff, and the
project's middleware enforces 2FA under /admin/); every view re-checks the study role itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from cohorts.models import Study
from cohorts.scoping import scoped
from measurements.exports import EXPORT_ROLES
from measurements.exports.forms import ExportForm
from measurements.exports.services import (
    export_download_record,
    export_job_create,
    export_site_restriction,
    may_export,
)
from measurements.imports.archive import ImportFileError
from measurements.imports.forms import UploadForm
from measurements.imports.services import withings_csv_import, withings_csv_plan
from measurements.models import ExportJob

PREVIEW_ROWS = 200
STAGING_MAX_AGE = 3600
STAGING_SALT = "measurements.import.staged"


def _context(admin_site, request, **extra) -> dict:
    return {**admin_site.each_context(request), **extra}


# Exports ----------------------------------------------------------------------------------------------


def exportable_studies(user):
    return scoped(Study.objects.all(), user, EXPORT_ROLES).order_by("name")


def export_choose_study(request, admin_site):
    studies = list(exportable_studies(request.user))
    if not studies:
        raise PermissionDenied
    if len(studies) == 1:
        return redirect("admin:measurements_exportjob_study", slug=studies[0].slug)
    return TemplateResponse(
        request,
        "admin/measurements/exportjob/choose_study.html",
        _context(admin_site, request, title="New export", studies=studies),
    )


def export_page(request, admin_site, slug: str):
    study = get_object_or_404(Study, slug=slug)
    if not may_export(request.user, study):
        raise PermissionDenied
    restricted = export_site_restriction(user=request.user, study=study)
    form = ExportForm(request.POST or None, study=study, restricted_site=restricted)
    if request.method == "POST" and form.is_valid():
        try:
            job = export_job_create(
                actor=request.user, study=study, fmt=form.cleaned_data["format"], filters=form.filters()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("admin:measurements_exportjob_progress", pk=job.pk)
    jobs = scoped(ExportJob.objects.filter(study=study), request.user, EXPORT_ROLES).select_related(
        "requested_by", "site"
    )[:20]
    return TemplateResponse(
        request,
        "admin/measurements/exportjob/export_page.html",
        _context(
            admin_site,
            request,
            title=f"Export {study.name}",
            study=study,
            form=form,
            jobs=jobs,
            restricted_site=restricted,
        ),
    )


def _visible_job(request, pk: int) -> ExportJob:
    qs = scoped(ExportJob.objects.select_related("study", "site", "requested_by"), request.user, EXPORT_ROLES)
    return get_object_or_404(qs, pk=pk)


def _progress(job: ExportJob) -> dict:
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "percent": job.progress_percent,
        "error": job.error,
        "download_url": reverse("admin:measurements_exportjob_download", args=[job.pk])
        if job.status == ExportJob.Status.DONE
        else None,
    }


def export_progress(request, admin_site, pk: int):
    job = _visible_job(request, pk)
    return TemplateResponse(
        request,
        "admin/measurements/exportjob/progress.html",
        _context(
            admin_site,
            request,
            title=f"Export of {job.study.name}",
            job=job,
            progress=_progress(job),
            running=job.status in (ExportJob.Status.PENDING, ExportJob.Status.RUNNING),
        ),
    )


def export_progress_json(request, admin_site, pk: int):
    return JsonResponse(_progress(_visible_job(request, pk)))


def export_download(request, admin_site, pk: int):
    job = _visible_job(request, pk)
    try:
        path = export_download_record(actor=request.user, job=job)
    except ValidationError as exc:
        raise Http404("This export is not ready.") from exc
    if not path.exists():
        raise Http404("The export file is gone.")
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=job.filename, content_type="application/zip"
    )


# CSV import -------------------------------------------------------------------------------------------


def _staging_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "import-staging"


def _stage(upload) -> tuple[str, str, Path]:
    """Copy the upload to the staging directory in chunks; returns its token, SHA-256 and path."""
    token = secrets.token_urlsafe(24)
    directory = _staging_dir()
    directory.mkdir(parents=True, exist_ok=True)
    expired = time.time() - STAGING_MAX_AGE
    for old in directory.glob("*.upload"):  # previews nobody confirmed
        if old.stat().st_mtime < expired:
            old.unlink(missing_ok=True)
    path, digest = directory / f"{token}.upload", hashlib.sha256()
    with path.open("wb") as staged:
        for chunk in upload.chunks():
            digest.update(chunk)
            staged.write(chunk)
    return token, digest.hexdigest(), path


def _unstage(signed: str, *, user_id: int, participant_id: int) -> tuple[BinaryIO, dict]:
    """The staged upload, opened (and removed from the staging directory: single use)."""
    try:
        payload = signing.loads(signed, salt=STAGING_SALT, max_age=STAGING_MAX_AGE)
    except signing.BadSignature as exc:
        raise ImportFileError("This preview has expired: upload the file again.") from exc
    if payload.get("user") != user_id or payload.get("participant") != participant_id:
        raise PermissionDenied
    path = _staging_dir() / f"{payload['token']}.upload"
    try:
        staged = path.open("rb")
    except OSError as exc:
        raise ImportFileError("This preview has expired: upload the file again.") from exc
    path.unlink(missing_ok=True)
    digest = hashlib.sha256()
    while chunk := staged.read(1 << 20):
        digest.update(chunk)
    if digest.hexdigest() != payload["sha256"]:
        staged.close()
        raise ImportFileError("The staged file changed: upload it again.")
    staged.seek(0)
    return staged, payload


def import_page(request, model_admin, pk: int):
    participant = get_object_or_404(model_admin.get_queryset(request).select_related("study", "site"), pk=pk)
    model_admin.check_tenant_write(request, participant.study_id, participant.site_id)
    admin_site = model_admin.admin_site
    changelist = reverse("admin:measurements_withingscsvimport_changelist")
    if request.method == "POST" and "staged" in request.POST:
        try:
            staged, payload = _unstage(
                request.POST["staged"], user_id=request.user.pk, participant_id=participant.pk
            )
            with staged:
                plan = withings_csv_import(
                    actor=request.user,
                    participant=participant,
                    data=staged,
                    timezone=payload["timezone"] or None,
                    filename=payload["filename"],
                )
        except ImportFileError as exc:
            messages.error(request, "Nothing was imported. " + " ".join(exc.messages))
            return redirect(request.path)
        counts = plan.counts()
        messages.success(
            request,
            f"{participant.code}: {counts['added']} readings imported; "
            f"{counts['already_present']} already present, {counts['pulse_only']} pulse-only rows skipped, "
            f"{counts['flagged_local_time']} flagged.",
        )
        return redirect(changelist)

    form = UploadForm(request.POST or None, request.FILES or None)
    context = {"participant": participant, "form": form, "changelist_url": changelist}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        timezone = form.cleaned_data["timezone"]
        token, digest, path = _stage(upload)
        try:
            with path.open("rb") as data:
                plan = withings_csv_plan(participant=participant, data=data, timezone=timezone or None)
        except ImportFileError as exc:
            path.unlink(missing_ok=True)
            for message in exc.messages:
                form.add_error("file", message)
        else:
            staged = signing.dumps(
                {
                    "token": token,
                    "sha256": digest,
                    "user": request.user.pk,
                    "participant": participant.pk,
                    "timezone": timezone,
                    "filename": upload.name[:100],
                },
                salt=STAGING_SALT,
            )
            context.update(
                plan=plan,
                counts=plan.counts(),
                staged=staged,
                to_add=plan.to_add[:PREVIEW_ROWS],
                preview_rows=PREVIEW_ROWS,
                filename=upload.name,
            )
            return TemplateResponse(
                request,
                "admin/measurements/withingscsvimport/preview.html",
                _context(admin_site, request, title=f"Preview: import into {participant.code}", **context),
            )
    return TemplateResponse(
        request,
        "admin/measurements/withingscsvimport/upload.html",
        _context(admin_site, request, title=f"Import a Withings export into {participant.code}", **context),
    )
