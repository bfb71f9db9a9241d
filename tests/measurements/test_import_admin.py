"""Coordinators import a Withings export in the admin: upload → preview (nothing written) → confirm."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from measurements.models import BloodPressureReading
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory
from tests.fixtures.shared_data import SHARED_FIXTURES

CSV = (
    b'Date,"Heart rate",Systolic,Diastolic,Comments\n'
    b'"2024-10-27 02:30:00",61,121,81,\n'
    b'"2024-05-01 07:00:00",70,130,85,\n'
    b'"2024-05-02 07:00:00",72,,,\n'
)
pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="alpha")
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    participant = ParticipantFactory(study=study, site=north, code="A-001", timezone="Europe/Paris")
    return study, north, south, participant


def url(participant) -> str:
    return reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])


def upload(client, participant, data=CSV, name="bp.csv", **extra):
    return client.post(url(participant), {"file": SimpleUploadedFile(name, data), "timezone": "", **extra})


def test_upload_preview_then_confirm(setup, client):
    study, _, _, participant = setup
    user = MembershipFactory(study=study, role=Role.COORDINATOR).user
    client.force_login(user)
    changelist = client.get(reverse("admin:measurements_withingscsvimport_changelist")).content.decode()
    assert url(participant) in changelist
    assert client.get(url(participant)).status_code == 200
    preview = upload(client, participant)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "<strong>2</strong> readings will be added" in html
    assert "1 pulse-only rows" in html
    assert "<strong>1</strong> flagged" in html
    assert "local time repeated" in html
    assert not BloodPressureReading.objects.exists()  # preview writes nothing
    staged = re.search(r'name="staged" value="([^"]+)"', html).group(1)
    done = client.post(url(participant), {"staged": staged})
    assert done.status_code == 302
    assert BloodPressureReading.objects.filter(participant=participant).count() == 2
    event = AuditEvent.objects.get(action="import.withings_csv")
    assert event.actor == user
    assert event.detail["added"] == 2
    assert event.detail["pulse_only"] == 1
    # The staged upload is single-use.
    client.post(url(participant), {"staged": staged})
    assert BloodPressureReading.objects.count() == 2
    assert AuditEvent.objects.filter(action="import.withings_csv").count() == 1


@pytest.mark.shared_fixture("bp.csv")
def test_real_bp_csv_preview_in_perth(setup, client):
    study, _, _, participant = setup
    participant.timezone = "Australia/Perth"
    participant.save()
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    html = upload(client, participant, (SHARED_FIXTURES / "bp.csv").read_bytes()).content.decode()
    assert "<strong>29</strong> readings will be added" in html
    assert "6 pulse-only rows" in html
    assert "2023-12-18 22:07:05Z" in html


def test_bad_file_shows_the_problem_and_imports_nothing(setup, client):
    study, _, _, participant = setup
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    response = upload(client, participant, b"Date,Weight\n2024-01-01,80\n")
    assert response.status_code == 200
    assert "Wrong columns" in response.content.decode()
    assert 'name="staged"' not in response.content.decode()
    response = upload(client, participant, b"\x89PNG\r\n\x1a\n\x00", name="photo.png")
    assert "not a CSV" in response.content.decode()
    assert not BloodPressureReading.objects.exists()


def test_tampered_or_foreign_preview_imports_nothing(setup, client):
    study, _, _, participant = setup
    other = ParticipantFactory(study=study, site=participant.site, code="A-002")
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    html = upload(client, participant).content.decode()
    staged = re.search(r'name="staged" value="([^"]+)"', html).group(1)
    client.post(url(participant), {"staged": staged[:-2] + "xx"})
    assert client.post(url(other), {"staged": staged}).status_code == 403
    assert not BloodPressureReading.objects.exists()


@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.INVESTIGATOR])
def test_only_coordinators_import(setup, client, role):
    study, _, _, participant = setup
    client.force_login(MembershipFactory(study=study, role=role).user)
    assert client.get(reverse("admin:measurements_withingscsvimport_changelist")).status_code == 403
    assert upload(client, participant).status_code in (403, 404)
    assert not BloodPressureReading.objects.exists()


def test_site_coordinator_cannot_import_into_another_site(setup, client):
    study, _, south, participant = setup
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR, site=south).user)
    assert upload(client, participant).status_code == 404
    other_study_coordinator = MembershipFactory(study=StudyFactory(), role=Role.COORDINATOR).user
    client.force_login(other_study_coordinator)
    assert upload(client, participant).status_code == 404
    assert not BloodPressureReading.objects.exists()
