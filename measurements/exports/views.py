"""Staff pages for exports. Mounted under the admin (admin_view: login + staff, and the project's
middleware enforces 2FA under /admin/); every view re-checks the study role itself.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from cohorts.models import Participant, Study
from cohorts.scoping import scoped
from measurements.exports import EXPORT_ROLES
from measurements.exports.forms import ExportForm
from measurements.exports.rows import ExportFilters
from measurements.exports.services import (
    deidentified_only,
    export_download_record,
    export_job_create,
    export_site_restriction,
    may_export,
)
from measurements.models import ExportJob


def _context(admin_site, request, **extra) -> dict:
    return {**admin_site.each_context(request), **extra}


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
    limited = deidentified_only(request.user, study)
    form = ExportForm(
        request.POST or None, study=study, restricted_site=restricted, deidentified_only=limited
    )
    if request.method == "POST" and form.is_valid():
        try:
            job = export_job_create(
                actor=request.user,
                study=study,
                fmt=form.cleaned_data["format"],
                filters=form.filters(),
                deidentified=form.cleaned_data["deidentified"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("admin:measurements_exportjob_progress", pk=job.pk)
    jobs = scoped(ExportJob.objects.filter(study=study), request.user, EXPORT_ROLES).select_related(
        "requested_by", "site"
    )
    if limited:
        jobs = jobs.filter(deidentified=True)
    jobs = jobs[:20]
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
    job = get_object_or_404(qs, pk=pk)
    if not job.deidentified and deidentified_only(request.user, job.study):
        raise PermissionDenied  # a colleague's full package: not even its page
    return job


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


def export_filters_summary(job: ExportJob) -> list[tuple[str, str]]:
    """What the job was made with, as (label, text) pairs for its page."""
    filters = ExportFilters.from_json(job.filters)
    statuses = dict(Participant.Status.choices)
    sites = ", ".join(filters.sites) if filters.sites else "all"
    if job.site:
        sites = f"{job.site.code} only (the requester's role is limited to site {job.site.name})"
    return [
        ("Format", job.get_format_display()),
        ("Dates", filters.dates_text()),
        ("Sites", sites),
        ("Participant status", ", ".join(str(statuses.get(s, s)) for s in filters.statuses) or "all"),
        ("De-identified", "yes" if job.deidentified else "no"),
    ]


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
            filters=export_filters_summary(job),
            running=job.status in (ExportJob.Status.PENDING, ExportJob.Status.RUNNING),
        ),
    )


def export_progress_json(request, admin_site, pk: int):  # noqa: ARG001 — the admin's route signature
    return JsonResponse(_progress(_visible_job(request, pk)))


def export_download(request, admin_site, pk: int):  # noqa: ARG001 — the admin's route signature
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
