"""Export jobs through the API: kick-off (202 + Content-Location), poll, download; rights as in the admin."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.urls import reverse

from cohorts.models import AuditEvent
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_run
from measurements.models import BloodPressureReading, ExportJob

pytestmark = pytest.mark.django_db
KICK_OFF = reverse("api:exports", args=["alpha"])


def local(url: str) -> str:
    return url.replace("http://testserver", "")


def test_kick_off_poll_download(world, as_user, django_capture_on_commit_callbacks):
    api = as_user(world.full)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(KICK_OFF, {"format": "csv", "sites": ["north"]})
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert response["Content-Location"] == f"http://testserver/api/v1/exports/{job.uuid}/"
    status = api.get(local(response["Content-Location"]))
    assert status.status_code == 200
    body = status.json()
    assert body["requiresAccessToken"] is True
    assert body["output"][0]["count"] == 4  # A-1's four readings (site north)
    download = api.get(local(body["output"][0]["url"]))
    assert download.status_code == 200
    package = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    rows = list(csv.DictReader(io.StringIO(package.read("readings.csv").decode())))
    assert [r["participant"] for r in rows] == ["A-1"] * 4
    created = AuditEvent.objects.get(action="export.created")
    assert created.detail["via"] == "api"
    downloaded = AuditEvent.objects.get(action="export.downloaded")
    assert (downloaded.actor, downloaded.detail["via"]) == (world.full, "api")


def test_poll_while_running_is_202_with_progress(world, as_user):
    job = export_job_create(
        actor=world.full, study=world.study, fmt="json", filters=ExportFilters(), run=False
    )
    ExportJob.objects.filter(pk=job.pk).update(status="running", rows_done=3, rows_total=7)
    api = as_user(world.full)
    response = api.get(reverse("api:export_status", args=[job.uuid]))
    assert response.status_code == 202
    assert response["X-Progress"] == "42% (3 of 7 readings)"
    assert response["Retry-After"] == "5"
    file = api.get(reverse("api:export_file", args=[job.uuid]))
    assert file.status_code == 400
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


def test_bad_requests_create_nothing(world, as_user):
    api = as_user(world.full)
    for body in ({"format": "pdf"}, {"format": "csv", "sites": "north"}, {"format": "csv", "colour": 1},
                 {"format": "csv", "since": "yesterday"}, {"format": "csv", "sites": ["east"]}):  # fmt: skip
        assert api.post(KICK_OFF, body).status_code == 400, body
    assert api.client.post(KICK_OFF, "not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {api.token}").status_code == 400  # fmt: skip
    assert not ExportJob.objects.exists()


def test_limited_user_cannot_get_full_exports_through_the_api(
    world, as_user, django_capture_on_commit_callbacks
):
    api = as_user(world.limited)
    refused = api.post(KICK_OFF, {"format": "csv", "deidentified": False})
    assert refused.status_code == 403
    assert api.post(KICK_OFF, {"format": "csv", "since": "2025-04-01"}).status_code == 400
    assert not ExportJob.objects.exists()
    # A full package made by a colleague: invisible by its URLs.
    full = export_job_create(
        actor=world.full, study=world.study, fmt="csv", filters=ExportFilters(), run=False
    )
    export_job_run(job_id=full.pk)
    assert api.get(reverse("api:export_status", args=[full.uuid])).status_code == 404
    assert api.get(reverse("api:export_file", args=[full.uuid])).status_code == 404
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()
    # Asking nothing gives a de-identified package.
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api.post(KICK_OFF, {"format": "csv"})
    assert accepted.status_code == 202
    job = ExportJob.objects.exclude(pk=full.pk).get()
    assert job.deidentified is True
    url = api.get(local(accepted["Content-Location"])).json()["output"][0]["url"]
    package = zipfile.ZipFile(io.BytesIO(b"".join(api.get(local(url)).streaming_content)))
    text = package.read("readings.csv").decode()
    for instant in BloodPressureReading.objects.values_list("measured_at", flat=True):
        assert instant.strftime("%Y-%m-%dT%H:%M:%S") not in text


def test_deidentified_token_of_a_full_manager_is_limited_too(world, as_user):
    api = as_user(world.full, deidentified_only=True)
    assert api.post(KICK_OFF, {"format": "csv", "deidentified": False}).status_code == 403
    full = export_job_create(
        actor=world.full, study=world.study, fmt="csv", filters=ExportFilters(), run=False
    )
    export_job_run(job_id=full.pk)
    assert api.get(reverse("api:export_file", args=[full.uuid])).status_code == 404
    assert not ExportJob.objects.filter(deidentified=False).exclude(pk=full.pk).exists()


def test_other_studys_jobs_are_404(world, as_user):
    theirs = export_job_create(
        actor=world.other_manager, study=world.other, fmt="csv", filters=ExportFilters(), run=False
    )
    export_job_run(job_id=theirs.pk)
    api = as_user(world.full)
    assert api.get(reverse("api:export_status", args=[theirs.uuid])).status_code == 404
    assert api.get(reverse("api:export_file", args=[theirs.uuid])).status_code == 404
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()
    assert not AuditEvent.objects.filter(action="api.call", study=world.other).exists()
