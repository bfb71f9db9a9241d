"""Only the study's data managers export and download; everyone else is refused and nothing is written."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_download_record, export_job_create
from measurements.models import ExportJob
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ReadingFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="alpha")
    other = StudyFactory(slug="bravo")
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    ReadingFactory(participant=ParticipantFactory(study=study, site=north, code="A-NORTH"))
    ReadingFactory(participant=ParticipantFactory(study=study, site=south, code="A-SOUTH"))
    ReadingFactory(participant=ParticipantFactory(study=other, code="B-SECRET"))
    users = {
        "data_manager": MembershipFactory(study=study, role=Role.DATA_MANAGER).user,
        "site_data_manager": MembershipFactory(study=study, role=Role.DATA_MANAGER, site=north).user,
        "coordinator": MembershipFactory(study=study, role=Role.COORDINATOR).user,
        "investigator": MembershipFactory(study=study, role=Role.INVESTIGATOR).user,
        "other_data_manager": MembershipFactory(study=other, role=Role.DATA_MANAGER).user,
        "no_membership": UserFactory(),
    }
    return study, other, users, settings.MEDIA_ROOT


REFUSED = ["coordinator", "investigator", "other_data_manager", "no_membership"]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("who", REFUSED)
def test_service_refuses_and_writes_nothing(world, who):
    study, _, users, media = world
    with pytest.raises(PermissionDenied):
        export_job_create(actor=users[who], study=study, fmt="csv", filters=ExportFilters())
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="export.").exists()
    assert files_under(media) == []


@pytest.mark.parametrize("who", REFUSED)
def test_export_page_refuses_and_writes_nothing(world, who, client, django_capture_on_commit_callbacks):
    study, _, users, media = world
    client.force_login(users[who])
    url = reverse("admin:measurements_exportjob_study", args=[study.slug])
    assert client.get(url).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"format": "csv"}).status_code == 403
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="export.").exists()
    assert files_under(media) == []


def create_via_page(client, user, study, django_capture_on_commit_callbacks, **data) -> ExportJob:
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:measurements_exportjob_study", args=[study.slug]), {"format": "csv", **data}
        )
    job = ExportJob.objects.latest("id")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:measurements_exportjob_progress", args=[job.pk])
    job.refresh_from_db()
    return job


def csv_participants(body: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        lines = archive.read("readings.csv").decode().splitlines()[1:]
    return [line.split(",")[2] for line in lines]


def test_data_manager_exports_sees_progress_and_every_download_is_audited(
    world, client, django_capture_on_commit_callbacks
):
    study, _, users, _ = world
    user = users["data_manager"]
    job = create_via_page(client, user, study, django_capture_on_commit_callbacks)
    assert job.status == ExportJob.Status.DONE
    page = client.get(reverse("admin:measurements_exportjob_progress", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<progress" in html
    assert reverse("admin:measurements_exportjob_download", args=[job.pk]) in html
    progress = client.get(reverse("admin:measurements_exportjob_progress_json", args=[job.pk])).json()
    assert progress["status"] == "done"
    assert progress["percent"] == 100
    assert progress["rows_done"] == 2
    download_url = reverse("admin:measurements_exportjob_download", args=[job.pk])
    for expected in (1, 2):
        response = client.get(download_url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")
        body = b"".join(response.streaming_content)
        assert csv_participants(body) == ["A-NORTH", "A-SOUTH"]
        events = AuditEvent.objects.filter(action="export.downloaded", actor=user)
        assert events.count() == expected
    assert events.first().detail["sha256"] == job.sha256
    created = AuditEvent.objects.get(action="export.created")
    assert created.actor == user
    assert created.study == study
    assert created.target == str(job.uuid)


def test_running_job_page_has_a_no_js_refresh(world, client):
    study, _, users, _ = world
    job = ExportJob.objects.create(
        study=study, requested_by=users["data_manager"], format="csv", rows_total=10
    )
    client.force_login(users["data_manager"])
    html = client.get(reverse("admin:measurements_exportjob_progress", args=[job.pk])).content.decode()
    assert '<meta http-equiv="refresh"' in html
    assert "progress.json" in html
    assert client.get(reverse("admin:measurements_exportjob_download", args=[job.pk])).status_code == 404
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


@pytest.mark.parametrize("who", ["coordinator", "investigator", "other_data_manager", "site_data_manager"])
def test_others_cannot_see_or_download_a_whole_study_export(
    world, who, client, django_capture_on_commit_callbacks
):
    study, _, users, _ = world
    job = create_via_page(client, users["data_manager"], study, django_capture_on_commit_callbacks)
    client.force_login(users[who])
    for name in ("progress", "progress_json", "download"):
        assert client.get(reverse(f"admin:measurements_exportjob_{name}", args=[job.pk])).status_code in (
            403,
            404,
        )
    with pytest.raises(PermissionDenied):
        export_download_record(actor=users[who], job=job)
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


def test_site_restricted_data_manager_exports_their_site_only(
    world, client, django_capture_on_commit_callbacks
):
    study, _, users, _ = world
    job = create_via_page(client, users["site_data_manager"], study, django_capture_on_commit_callbacks)
    assert job.site.code == "north"
    body = b"".join(
        client.get(reverse("admin:measurements_exportjob_download", args=[job.pk])).streaming_content
    )
    assert csv_participants(body) == ["A-NORTH"]
    # Even asking for the other site gives nothing of it.
    job = create_via_page(
        client, users["site_data_manager"], study, django_capture_on_commit_callbacks, sites="south"
    )
    assert job.rows_done == 1
    # The study-wide data manager may download the site's package too.
    client.force_login(users["data_manager"])
    assert client.get(reverse("admin:measurements_exportjob_download", args=[job.pk])).status_code == 200


def test_changelist_and_add_are_for_data_managers(world, client):
    study, _, users, _ = world
    client.force_login(users["coordinator"])
    assert client.get(reverse("admin:measurements_exportjob_changelist")).status_code == 403
    assert client.get(reverse("admin:measurements_exportjob_add")).status_code == 403
    client.force_login(users["data_manager"])
    assert client.get(reverse("admin:measurements_exportjob_changelist")).status_code == 200
    response = client.get(reverse("admin:measurements_exportjob_add"))
    assert response["Location"] == reverse("admin:measurements_exportjob_study", args=[study.slug])
    page = client.get(response["Location"]).content.decode()
    assert "FHIR R4" in page
    assert "bravo" not in page


def test_pages_need_sign_in_and_two_factor(world, client):
    study = world[0]
    url = reverse("admin:measurements_exportjob_study", args=[study.slug])
    assert client.get(url).status_code == 302
    no_totp = MembershipFactory(study=study, role=Role.DATA_MANAGER, user=UserFactory(totp=False)).user
    client.force_login(no_totp)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    assert not ExportJob.objects.exists()


def test_export_manifest_names_no_e_mail(world, client, django_capture_on_commit_callbacks):
    study, _, users, _ = world
    job = create_via_page(client, users["data_manager"], study, django_capture_on_commit_callbacks)
    body = b"".join(
        client.get(reverse("admin:measurements_exportjob_download", args=[job.pk])).streaming_content
    )
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        everything = b"".join(archive.read(n) for n in archive.namelist())
    assert users["data_manager"].email.encode() not in everything
    assert b"@" not in everything.replace(b"@SUM", b"")
    assert json.loads(zipfile.ZipFile(io.BytesIO(body)).read("manifest.json"))["study"] == "alpha"
