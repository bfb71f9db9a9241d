"""The CSV import keeps the participation window of the Withings API paths: readings measured before
the participation start are skipped and counted, not stored."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from cohorts.selectors import participation_start
from measurements.imports.services import withings_csv_import, withings_csv_plan
from measurements.models import BloodPressureReading
from tests.factories import MembershipFactory, ParticipantFactory, StudyFactory

pytestmark = pytest.mark.django_db
HEADER = 'Date,"Heart rate",Systolic,Diastolic,Comments\n'


def csv_bytes(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def test_readings_before_the_participation_start_are_skipped_at_the_same_instant_as_the_api():
    study = StudyFactory(start_date=dt.date(2024, 3, 10))
    participant = ParticipantFactory(study=study, timezone="UTC", start_date=dt.date(2024, 4, 1))
    bound = participation_start(participant)
    assert bound == dt.datetime(2024, 3, 9, tzinfo=dt.UTC)  # the study's start wins, a day early
    data = csv_bytes(
        '"2024-03-12 08:00:00",70,130,85,',
        '"2024-03-09 00:00:00",71,131,86,',  # exactly the bound: kept
        '"2024-03-08 23:59:59",72,132,87,',  # a second before: skipped
        '"2023-12-24 08:00:00",73,133,88,',
        '"2023-12-24 09:00:00",73,,,',
    )
    plan = withings_csv_import(actor=None, participant=participant, data=data)
    assert plan.counts() == {
        "rows": 5,
        "added": 2,
        "before_participation": 2,
        "already_present": 0,
        "duplicate_in_file": 0,
        "pulse_only": 1,
        "empty": 0,
        "flagged_local_time": 0,
    }
    assert list(plan.early_lines) == [4, 5]
    stored = BloodPressureReading.objects.filter(participant=participant)
    assert sorted(stored.values_list("systolic", flat=True)) == [130, 131]
    assert not stored.filter(measured_at__lt=bound).exists()
    assert AuditEvent.objects.get(action="import.withings_csv").detail["before_participation"] == 2


def test_without_any_start_date_every_reading_is_imported():
    participant = ParticipantFactory(timezone="UTC", start_date=None)
    assert participation_start(participant) is None
    plan = withings_csv_plan(participant=participant, data=csv_bytes('"2005-01-01 08:00:00",70,130,85,'))
    assert plan.counts()["added"] == 1
    assert plan.counts()["before_participation"] == 0


def test_preview_and_command_say_what_was_skipped(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    participant = ParticipantFactory(timezone="UTC", start_date=dt.date(2024, 5, 2))
    data = csv_bytes('"2024-05-01 07:00:00",70,130,85,', '"2024-04-30 07:00:00",70,131,85,')
    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])
    html = client.post(url, {"file": SimpleUploadedFile("bp.csv", data), "timezone": ""}).content.decode()
    assert "<strong>1</strong> readings will be added" in html
    assert "1 measured before the participation start (2024-05-01 00:00 UTC): skipped" in html
    assert re.search(r'name="staged"', html)
    assert not BloodPressureReading.objects.exists()

    path = tmp_path / "bp.csv"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("import_withings_export", participant.study.slug, participant.code, str(path), stdout=out)
    assert "1 added" in out.getvalue()
    assert "1 before the participation start" in out.getvalue()
    assert BloodPressureReading.objects.filter(participant=participant).count() == 1
