"""`/api/v1/`: studies, readings page by page (CSV or JSON), and export jobs in the FHIR Bulk Data
style (kick-off → 202 + Content-Location; poll → 202 + X-Progress, then 200 with the file URL).

Plain Django views: four endpoints, token auth and keyset paging are a few dozen lines here, while
DRF would bring its own auth, throttling and pagination classes that this project already has
(core.throttle, cohorts.scoping, the export services) and a second permission model beside them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from cohorts.models import ExportRights
from cohorts.scoping import memberships, scoped
from measurements.exports import EXPORT_ROLES
from measurements.exports.columns import COLUMN_NAMES
from measurements.exports.formatting import csv_cell, json_value
from measurements.exports.rows import ExportFilters
from measurements.exports.services import deidentified_only, export_download_record, export_job_create
from measurements.models import ExportJob

from .auth import Call, api_view
from .openapi import openapi_document
from .selectors import (
    BadRequest,
    ReadingsQuery,
    api_studies,
    api_study,
    gives_deidentified,
    parse_instant,
    readings_page,
)

POLL_AFTER_SECONDS = 5


def _absolute(request: HttpRequest, path: str, params: dict | None = None) -> str:
    return request.build_absolute_uri(path + (f"?{urlencode(params)}" if params else ""))


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadRequest(f"{name} must be true or false.")


@require_GET
@api_view
def studies(request: HttpRequest, call: Call) -> HttpResponse:
    user = call.user
    rights = {
        m.study_id: (m.export_rights, m.site.code if m.site else None)
        for m in memberships(user, EXPORT_ROLES).select_related("site")
    }
    result = []
    for study in api_studies(user).prefetch_related("sites"):
        export_rights, site = rights.get(study.pk, (ExportRights.FULL, None))
        if call.token.deidentified_only:
            export_rights = ExportRights.DEIDENTIFIED
        result.append(
            {
                "slug": study.slug,
                "name": study.name,
                "status": study.status,
                "sites": sorted(s.code for s in study.sites.all()),
                "site_restriction": site,
                "export_rights": export_rights,
                "readings_url": _absolute(request, reverse("api:readings", args=[study.slug])),
                "exports_url": _absolute(request, reverse("api:exports", args=[study.slug])),
            }
        )
    call.detail["studies"] = len(result)
    return JsonResponse({"results": result})


def _wants_csv(request: HttpRequest) -> bool:
    fmt = request.GET.get("format")
    if fmt:
        if fmt not in ("csv", "json"):
            raise BadRequest("format must be csv or json.")
        return fmt == "csv"
    accept = request.META.get("HTTP_ACCEPT", "")
    return "text/csv" in accept and "application/json" not in accept


def _limit(request: HttpRequest) -> int:
    text = request.GET.get("limit")
    if not text:
        return settings.API_PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= settings.API_MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be a whole number from 1 to {settings.API_MAX_PAGE_SIZE}.")
    return int(text)


@require_GET
@api_view
def readings(request: HttpRequest, call: Call, slug: str) -> HttpResponse:
    study = api_study(call.user, slug)
    if study is None:
        raise Http404
    call.study = study
    deidentified = gives_deidentified(
        call.user,
        study,
        token_deidentified_only=call.token.deidentified_only,
        asked=_flag(request.GET.get("deidentified"), "deidentified"),
    )
    since, until = request.GET.get("since"), request.GET.get("until")
    if deidentified and (since or until):
        raise BadRequest("since/until select by real dates, which de-identified data must not reveal.")
    query = ReadingsQuery(
        study=study,
        since=parse_instant(since, end=False) if since else None,
        until=parse_instant(until, end=True) if until else None,
        site=request.GET.get("site") or None,
        deidentified=deidentified,
    )
    as_csv = _wants_csv(request)
    page = readings_page(user=call.user, query=query, cursor=request.GET.get("cursor"), limit=_limit(request))
    next_url = None
    if page.next_cursor:
        params = {k: v for k, v in request.GET.items() if k != "cursor"}
        next_url = _absolute(request, request.path, {**params, "cursor": page.next_cursor})
    call.detail.update(rows=len(page.rows), deidentified=deidentified)
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMN_NAMES)
        writer.writerows([csv_cell(v) for v in row.values] for row in page.rows)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        response = JsonResponse(
            {
                "study": study.slug,
                "deidentified": deidentified,
                "results": [
                    dict(zip(COLUMN_NAMES, (json_value(v) for v in row.values), strict=True))
                    for row in page.rows
                ],
                "next": next_url,
            }
        )
    response["X-Deidentified"] = "true" if deidentified else "false"
    if next_url:
        response["Link"] = f'<{next_url}>; rel="next"'
    return response


def _export_request(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The body must be a JSON object.") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    unknown = set(body) - {"format", "since", "until", "sites", "statuses", "deidentified"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    for name in ("sites", "statuses"):
        value = body.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise BadRequest(f"{name} must be a list of strings.")
    return body


@require_http_methods(["POST"])
@api_view
def exports(request: HttpRequest, call: Call, slug: str) -> HttpResponse:
    study = api_study(call.user, slug)
    if study is None:
        raise Http404
    call.study = study
    body = _export_request(request)
    limited = call.token.deidentified_only or deidentified_only(call.user, study)
    deidentified = body.get("deidentified")
    if deidentified is None:
        deidentified = limited
    if not isinstance(deidentified, bool):
        raise BadRequest("deidentified must be true or false.")
    if limited and not deidentified:
        raise PermissionDenied("This token or role gives de-identified exports only.")
    try:
        filters = ExportFilters.from_json(body)
    except (ValueError, TypeError) as exc:
        raise BadRequest("since/until must be dates (YYYY-MM-DD); sites and statuses lists.") from exc
    if call.token.deidentified_only and (filters.since or filters.until):
        raise BadRequest("since/until select by real dates, which de-identified data must not reveal.")
    try:
        job = export_job_create(
            actor=call.user,
            study=study,
            fmt=str(body.get("format") or ""),
            filters=filters,
            via="api",
            deidentified=deidentified,
        )
    except ValidationError as exc:
        raise BadRequest(" ".join(exc.messages)) from exc
    status_url = _absolute(request, reverse("api:export_status", args=[job.uuid]))
    call.detail.update(export=str(job.uuid), deidentified=deidentified)
    response = JsonResponse({"id": str(job.uuid), "status_url": status_url}, status=202)
    response["Content-Location"] = status_url
    return response


def _visible_job(call: Call, uuid) -> ExportJob:
    job = (
        scoped(ExportJob.objects.select_related("study", "site"), call.user, EXPORT_ROLES)
        .filter(uuid=uuid)
        .first()
    )
    if job is None:
        raise Http404
    if not job.deidentified and (call.token.deidentified_only or deidentified_only(call.user, job.study)):
        raise Http404
    call.study = job.study
    call.detail["export"] = str(job.uuid)
    return job


@require_GET
@api_view
def export_status(request: HttpRequest, call: Call, uuid) -> HttpResponse:
    job = _visible_job(call, uuid)
    if job.status in (ExportJob.Status.PENDING, ExportJob.Status.RUNNING):
        response = JsonResponse(
            {"status": job.status, "rows_done": job.rows_done, "rows_total": job.rows_total}, status=202
        )
        response["X-Progress"] = (
            f"{job.progress_percent}% ({job.rows_done} of {job.rows_total or '?'} readings)"
        )
        response["Retry-After"] = str(POLL_AFTER_SECONDS)
        return response
    if job.status == ExportJob.Status.FAILED:
        return JsonResponse({"status": job.status, "error": job.error or "The export failed."}, status=500)
    return JsonResponse(
        {
            "status": job.status,
            "transactionTime": job.created_at.isoformat(),
            "request": _absolute(request, reverse("api:exports", args=[job.study.slug])),
            "requiresAccessToken": True,
            "deidentified": job.deidentified,
            "output": [
                {
                    "type": "package",
                    "format": job.format,
                    "url": _absolute(request, reverse("api:export_file", args=[job.uuid])),
                    "count": job.rows_done,
                    "bytes": job.file_size,
                    "sha256": job.sha256,
                }
            ],
            "error": [],
        }
    )


@require_GET
@api_view
def export_file(request: HttpRequest, call: Call, uuid) -> HttpResponse:  # noqa: ARG001 — view signature
    job = _visible_job(call, uuid)
    try:
        path: Path = export_download_record(actor=call.user, job=job, via="api")
    except ValidationError as exc:
        raise BadRequest("This export is not ready: poll its status URL.") from exc
    except PermissionDenied:
        raise Http404 from None
    if not path.exists():
        raise Http404
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=job.filename, content_type="application/zip"
    )


@require_GET
def schema(request: HttpRequest) -> JsonResponse:
    """The OpenAPI 3 description (public: it holds no data)."""
    return JsonResponse(openapi_document(server=_absolute(request, "/api/v1")))
