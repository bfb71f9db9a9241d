"""The REDCap project in the admin: checked against the project's metadata before saving, the token
encrypted and never shown back, the push log visible to the study's staff, and another study's staff
seeing and changing nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from redcap_bridge.models import RedcapProject, RedcapPushLog
from redcap_bridge.services import redcap_push
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

from .conftest import configure

pytestmark = pytest.mark.django_db

ADD = "admin:redcap_bridge_redcapproject_add"


@pytest.fixture
def study():
    return StudyFactory(slug="alpha", name="Alpha Study")


@pytest.fixture
def data_manager(study):
    return MembershipFactory(study=study, role=Role.DATA_MANAGER).user


def form_data(study, fake, token, **overrides):
    data = {
        "study": study.pk, "api_url": fake.api_url, "token": token, "record_prefix": "A-", "event": "",
        "mode": "readings", "instrument": "home_bp", "period_days": 7, "push_every_hours": 24,
        "batch_size": 500, "map_readings_systolic": "bp_sys", "map_readings_diastolic": "bp_dia",
        "map_readings_measured_at_local": "bp_datetime",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_a_data_manager_saves_a_checked_project_and_the_token_is_encrypted_and_never_shown(
    client, study, data_manager, fake_redcap
):
    remote = fake_redcap.state.add_project()
    client.force_login(data_manager)

    response = client.post(reverse(ADD), form_data(study, fake_redcap, remote.token))

    assert response.status_code == 302, response.context["adminform"].form.errors
    project = RedcapProject.objects.get(study=study)
    assert project.field_map == {
        "systolic": "bp_sys",
        "diastolic": "bp_dia",
        "measured_at_local": "bp_datetime",
    }
    assert project.field_types == {
        "bp_sys": "integer",
        "bp_dia": "integer",
        "bp_datetime": "datetime_seconds_ymd",
    }
    assert project.record_id_field == "record_id"
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM redcap_bridge_redcapproject WHERE id = %s", [project.pk])
        stored = cursor.fetchone()[0]
    assert remote.token not in stored
    assert project.token == remote.token
    audit = AuditEvent.objects.get(action="redcap.project_created")
    assert audit.detail["token_changed"] is True
    assert remote.token not in str(audit.detail)

    page = client.get(reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk]))
    assert page.status_code == 200
    assert remote.token not in page.content.decode()

    # Saving again without typing the token keeps it.
    response = client.post(
        reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk]),
        form_data(study, fake_redcap, "", record_prefix="ALPHA-"),
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.token, project.record_prefix) == (remote.token, "ALPHA-")
    assert AuditEvent.objects.get(action="redcap.project_changed").detail["token_changed"] is False


def test_an_unknown_field_is_refused_at_save_and_nothing_is_saved(client, study, data_manager, fake_redcap):
    remote = fake_redcap.state.add_project()
    client.force_login(data_manager)

    response = client.post(
        reverse(ADD),
        form_data(
            study, fake_redcap, remote.token, map_readings_pulse="heart_rate", map_readings_source="wk_n"
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert "The project has no field “heart_rate” (mapped from pulse)." in errors
    assert "The field “wk_n” is on the instrument “bp_week”, not on “home_bp”." in errors
    assert not RedcapProject.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="redcap.").exists()


def test_a_non_repeating_instrument_and_a_wrong_field_type_are_refused(
    client, study, data_manager, fake_redcap
):
    remote = fake_redcap.state.add_project()
    client.force_login(data_manager)

    response = client.post(
        reverse(ADD),
        form_data(study, fake_redcap, remote.token, instrument="enrollment", map_readings_systolic="",
                  map_readings_diastolic="", map_readings_measured_at_local="enrol_site"),
    )  # fmt: skip
    errors = response.context["adminform"].form.non_field_errors()
    assert any("“enrollment” is not a repeating instrument" in e for e in errors)
    assert not RedcapProject.objects.exists()

    response = client.post(
        reverse(ADD), form_data(study, fake_redcap, remote.token, map_readings_measured_at_local="bp_sys")
    )
    errors = response.context["adminform"].form.non_field_errors()
    assert any("“bp_sys” (text, integer) cannot hold" in e for e in errors)
    assert not RedcapProject.objects.exists()


def test_a_bad_token_is_refused_at_save_with_redcaps_words(client, study, data_manager, fake_redcap):
    fake_redcap.state.add_project()
    client.force_login(data_manager)
    wrong = "0123456789ABCDEF0123456789ABCDEF"

    response = client.post(reverse(ADD), form_data(study, fake_redcap, wrong))

    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["REDCap refused: You do not have permissions to use the API"]
    assert wrong not in response.content.decode()
    assert not RedcapProject.objects.exists()

    response = client.post(reverse(ADD), form_data(study, fake_redcap, "not-a-token-secret-value"))
    assert "not-a-token-secret-value" not in response.content.decode()
    assert not RedcapProject.objects.exists()


def test_a_failed_push_is_visible_in_the_push_log(client, study, data_manager, fake_redcap):
    ReadingFactory(participant=ParticipantFactory(study=study, code="A1"))
    project, remote = configure(study, fake_redcap)
    del fake_redcap.state.projects[remote.token]
    redcap_push(project_id=project.pk, trigger="command")
    client.force_login(data_manager)

    page = client.get(reverse("admin:redcap_bridge_redcappushlog_changelist")).content.decode()

    assert "You do not have permissions to use the API" in page
    assert "Failed" in page
    assert remote.token not in page


def test_another_studys_staff_see_and_change_nothing(
    client, study, fake_redcap, django_assert_max_num_queries
):
    project, remote = configure(study, fake_redcap)
    ReadingFactory(participant=ParticipantFactory(study=study, code="A1"))
    redcap_push(project_id=project.pk, trigger="command")
    other = StudyFactory(slug="bravo")
    outsider = MembershipFactory(study=other, role=Role.DATA_MANAGER).user
    client.force_login(outsider)
    change = reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk])
    log = RedcapPushLog.objects.get(project=project)

    with django_assert_max_num_queries(12):
        listing = client.get(reverse("admin:redcap_bridge_redcapproject_changelist"))
    assert listing.status_code == 200
    assert "alpha" not in listing.content.decode().lower().replace("alphabet", "")
    assert client.get(change).status_code == 302  # "doesn't exist" → admin index
    assert client.get(reverse("admin:redcap_bridge_redcappushlog_change", args=[log.pk])).status_code == 302
    assert "alpha" not in client.get(reverse("admin:redcap_bridge_redcappushlog_changelist")).content.decode()

    response = client.post(change, form_data(study, fake_redcap, "", record_prefix="HACKED-"))
    assert response.status_code in (302, 403)
    project.refresh_from_db()
    assert project.record_prefix == "BP-"

    # Nor may they point their own study at a project form with this study chosen.
    response = client.post(reverse(ADD), form_data(study, fake_redcap, remote.token))
    assert response.status_code == 200
    assert RedcapProject.objects.count() == 1


def test_a_coordinator_of_the_study_reads_but_does_not_change(client, study, fake_redcap):
    project, _remote = configure(study, fake_redcap)
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    change = reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk])

    assert client.get(change).status_code == 200
    response = client.post(change, form_data(study, fake_redcap, "", record_prefix="CHANGED-"))

    assert response.status_code == 403
    project.refresh_from_db()
    assert project.record_prefix == "BP-"
