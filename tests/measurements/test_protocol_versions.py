"""Protocol edits never rewrite history: a change of the rules is a new version effective from a day;
the days before keep the version they ran under (their expected readings don't move); the admin shows
the impact and applies nothing until it is confirmed; export packages name the versions."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Role
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.models import DailyAdherence, ExportJob, StudyProtocol, StudyProtocolVersion
from measurements.monitoring.adherence import adherence_rebuild_participant, adherence_refresh_days
from measurements.monitoring.services import protocol_save
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db
TODAY = now().date()


@pytest.fixture
def study30(django_capture_on_commit_callbacks):
    """A UTC participant 30 days into an open-ended HBPM protocol (4 readings a day expected), the
    protocol recorded as version 1 through the service."""
    study = StudyFactory(slug="versions", default_timezone="UTC")
    protocol = StudyProtocol(study=study, duration_days=None)
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol)
    participant = ParticipantFactory(study=study, timezone="UTC", start_date=TODAY - dt.timedelta(days=30))
    adherence_rebuild_participant(participant_id=participant.pk)
    return study, StudyProtocol.objects.get(study=study), participant


def expected_by_day(participant) -> dict[dt.date, tuple[int, int | None]]:
    rows = DailyAdherence.objects.filter(participant=participant).select_related("protocol_version")
    return {r.day: (r.expected, r.protocol_version.number if r.protocol_version else None) for r in rows}


def test_the_first_save_records_version_1_from_the_beginning(study30):
    study, _, participant = study30
    version = StudyProtocolVersion.objects.get(study=study)
    assert (version.number, version.effective_from) == (1, StudyProtocolVersion.BEGINNING)
    assert set(expected_by_day(participant).values()) == {(4, 1)}


def test_editing_the_rules_keeps_past_days_expected_counts(study30, django_capture_on_commit_callbacks):
    study, protocol, participant = study30
    before = expected_by_day(participant)
    protocol.readings_per_window = 3
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol, changed=["readings_per_window"], effective_from=TODAY)
    after = expected_by_day(participant)
    assert {d: v for d, v in after.items() if d < TODAY} == {d: v for d, v in before.items() if d < TODAY}
    assert after[TODAY] == (6, 2)
    assert list(StudyProtocolVersion.objects.filter(study=study).values_list("number", "effective_from")) == [
        (1, StudyProtocolVersion.BEGINNING),
        (2, TODAY),
    ]
    event = AuditEvent.objects.filter(action="protocol.saved", study=study).latest("pk")
    assert event.detail == {"changed": ["readings_per_window"], "version": 2, "effective_from": str(TODAY)}
    # A reading arriving late for a past day is counted under the version that day ran under.
    late_day = TODAY - dt.timedelta(days=3)
    for hour in (7, 8, 9):
        ReadingFactory(
            participant=participant, measured_at=dt.datetime.combine(late_day, dt.time(hour), dt.UTC)
        )
    adherence_refresh_days(participant_id=participant.pk, days=[late_day])
    row = DailyAdherence.objects.get(participant=participant, day=late_day)
    assert (row.morning, row.counted, row.expected, row.protocol_version.number) == (3, 2, 4, 1)


def test_a_protocol_without_recorded_versions_keeps_its_old_rules_as_version_1(
    django_capture_on_commit_callbacks,
):
    study = StudyFactory(default_timezone="UTC")
    protocol = StudyProtocol.objects.create(study=study, duration_days=None)  # e.g. seeded directly
    participant = ParticipantFactory(study=study, timezone="UTC", start_date=TODAY - dt.timedelta(days=10))
    adherence_rebuild_participant(participant_id=participant.pk)
    protocol.kind, protocol.readings_per_day = StudyProtocol.Kind.DAILY, 1
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol, effective_from=TODAY - dt.timedelta(days=2))
    v1, v2 = StudyProtocolVersion.objects.filter(study=study)
    assert (v1.kind, v1.readings_per_window, v2.kind, v2.readings_per_day) == ("hbpm", 2, "daily", 1)
    rows = expected_by_day(participant)
    assert rows[TODAY - dt.timedelta(days=3)] == (4, 1)
    assert rows[TODAY - dt.timedelta(days=2)] == (1, 2)


def test_a_version_cannot_start_before_the_current_one(study30, django_capture_on_commit_callbacks):
    study, protocol, _ = study30
    protocol.readings_per_window = 3
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol, effective_from=TODAY)
    protocol.readings_per_window = 1
    with pytest.raises(ValidationError, match="Must be after"):
        protocol_save(actor=None, protocol=protocol, effective_from=TODAY)
    assert StudyProtocolVersion.objects.filter(study=study).count() == 2
    assert StudyProtocol.objects.get(study=study).readings_per_window == 3


def test_other_settings_save_without_a_new_version(study30, django_capture_on_commit_callbacks):
    study, protocol, _ = study30
    protocol.home_systolic_threshold = 130
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        protocol_save(actor=None, protocol=protocol, changed=["home_systolic_threshold"])
    assert StudyProtocolVersion.objects.filter(study=study).count() == 1
    assert callbacks == []  # no rebuild queued
    assert StudyProtocol.objects.get(study=study).home_systolic_threshold == 130


def _post_data(client, url) -> dict:
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data = {k: (v.strftime("%H:%M") if isinstance(v, dt.time) else v) for k, v in data.items()}
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_admin_shows_the_impact_and_changes_nothing_until_confirmed(
    client, study30, django_capture_on_commit_callbacks
):
    study, protocol, participant = study30
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    url = reverse("admin:measurements_studyprotocol_change", args=[protocol.pk])
    data = _post_data(client, url)
    rows_before = expected_by_day(participant)
    audits_before = AuditEvent.objects.filter(action="protocol.saved").count()
    effective = TODAY - dt.timedelta(days=6)
    data.update(readings_per_window=3, effective_from=effective.isoformat())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Impact of this change" in html
    assert "Review the impact of this change below" in html
    # 7 days (6 past + today) of 1 participant: 4 → 6 readings each.
    assert '<strong data-impact="participants">1</strong>' in html
    assert '<strong data-impact="days">7</strong>' in html
    assert '<strong data-impact="before">28</strong>' in html
    assert '<strong data-impact="after">42</strong>' in html
    assert callbacks == []
    assert StudyProtocol.objects.get(pk=protocol.pk).readings_per_window == 2
    assert StudyProtocolVersion.objects.filter(study=study).count() == 1
    assert AuditEvent.objects.filter(action="protocol.saved").count() == audits_before
    assert expected_by_day(participant) == rows_before

    data["confirm"] = "on"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert StudyProtocol.objects.get(pk=protocol.pk).readings_per_window == 3
    rows = expected_by_day(participant)
    assert {rows[d] for d in rows if d < effective} == {(4, 1)}
    assert {rows[d] for d in rows if d >= effective} == {(6, 2)}
    page = client.get(url).content.decode()
    assert "Versions of the rules" in page
    assert f"from {effective}" in page


def test_admin_saves_a_threshold_change_without_confirmation(client, study30):
    study, protocol, _ = study30
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    url = reverse("admin:measurements_studyprotocol_change", args=[protocol.pk])
    data = _post_data(client, url)
    data.update(home_systolic_threshold=130)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert StudyProtocol.objects.get(pk=protocol.pk).home_systolic_threshold == 130
    assert StudyProtocolVersion.objects.filter(study=study).count() == 1


def test_export_manifest_names_the_protocol_versions(
    settings, tmp_path, study30, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    study, protocol, participant = study30
    ReadingFactory(participant=participant, measured_at=now() - dt.timedelta(days=2), systolic=Decimal(120))
    protocol.readings_per_window = 3
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol, effective_from=TODAY)
    user = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(actor=user, study=study, fmt="csv", filters=ExportFilters())
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE, job.error
    with zipfile.ZipFile(settings.MEDIA_ROOT / job.file) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    v1, v2 = manifest["protocol_versions"]
    assert (v1["version"], v1["effective_from"], v1["effective_until"]) == (
        1,
        None,
        str(TODAY - dt.timedelta(days=1)),
    )
    assert (v1["readings_per_window"], v1["expected_per_day"], v1["morning_start"]) == (2, 4, "04:00")
    assert (v2["version"], v2["effective_from"], v2["effective_until"]) == (2, str(TODAY), None)
    assert (v2["readings_per_window"], v2["expected_per_day"]) == (3, 6)
