"""The safety plan and the clinician's details in the admin: a new version per edit (prefilled from the
one in force), read back as the IRB-approved text; only the study's whole-study coordinators write;
other studies see nothing; the clinician's number stored encrypted and shown only masked."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.urls import reverse

from cohorts.models import AuditEvent, Role, StudyMembership
from measurements.models import SafetyPlan
from measurements.monitoring.safety import safety_plan_current
from tests.factories import MembershipFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:measurements_safetyplan_add")


def plan_post(study, **changes):
    data = {
        "study": study.pk,
        "approval_reference": "IRB-2026-014 amend. 3",
        "severe_systolic": 180,
        "severe_diastolic": 110,
        "severe_message": "Sit quietly 5 minutes and measure again.",
        "low_systolic": "",
        "low_message": "",
        "ack_minutes": 120,
        "working_hours_only": "on",
        "work_start": "08:30",
        "work_end": "17:30",
        "escalation": json.dumps([{"to": "clinician", "after_minutes": 60}]),
        "confirm_window_minutes": 30,
        "message_participant": "on",
        "safety_ignores_quiet_hours": "on",
    }
    data.update(changes)
    return data


@pytest.fixture
def alpha():
    study = StudyFactory(
        slug="alpha", name="Alpha", default_timezone="Europe/London", contact_phone="+44 20 7946 0000"
    )
    safety_plan_current(study.pk)  # version 1, the defaults
    return study


def test_a_coordinator_adds_a_version_and_reads_it_as_the_approved_text(client, alpha):
    coordinator = MembershipFactory(study=alpha, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    form = client.get(ADD + f"?study={alpha.pk}").content.decode()
    assert "Your last blood pressure reading was very high" in form  # prefilled from v1

    response = client.post(ADD, plan_post(alpha))
    assert response.status_code == 302, response.content.decode()[:2000]
    v2 = SafetyPlan.objects.get(study=alpha, version=2)
    assert (v2.severe_diastolic, v2.ack_minutes, v2.created_by) == (110, 120, coordinator)
    page = client.get(reverse("admin:measurements_safetyplan_change", args=[v2.pk])).content.decode()
    assert "version 2 (approval IRB-2026-014 amend. 3)" in page
    assert "within 2 h, counting only working hours (08:30–17:30, Monday to Friday, Europe/London)" in page
    assert "designated clinician or pi are notified" in page.lower()
    assert AuditEvent.objects.filter(action="safety_plan.saved", study=alpha).count() == 1


def test_bad_values_are_refused_and_nothing_is_saved(client, alpha):
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR).user)
    for bad in (
        {"escalation": json.dumps([{"to": "nobody", "after_minutes": 60}])},
        {"work_end": "08:00"},
        {"low_systolic": 90, "low_message": ""},
        {"severe_systolic": 90},
    ):
        response = client.post(ADD, plan_post(alpha, **bad))
        assert response.status_code == 200, bad
        assert "errornote" in response.content.decode(), bad
    assert SafetyPlan.objects.filter(study=alpha).count() == 1
    assert not AuditEvent.objects.filter(action="safety_plan.saved").exists()


def test_only_whole_study_coordinators_write_and_other_studies_see_nothing(client, alpha):
    site = SiteFactory(study=alpha)
    for user in (
        MembershipFactory(study=alpha, role=Role.INVESTIGATOR).user,
        MembershipFactory(study=alpha, role=Role.COORDINATOR, site=site).user,
    ):
        client.force_login(user)
        assert client.post(ADD, plan_post(alpha)).status_code == 403
    other = MembershipFactory(study=StudyFactory(slug="bravo"), role=Role.COORDINATOR).user
    client.force_login(other)
    plan = SafetyPlan.objects.get(study=alpha)
    assert client.get(reverse("admin:measurements_safetyplan_change", args=[plan.pk])).status_code == 302
    assert "Alpha" not in client.get(reverse("admin:measurements_safetyplan_changelist")).content.decode()
    assert SafetyPlan.objects.filter(study=alpha).count() == 1


def test_plan_list_query_count(client, alpha, django_assert_max_num_queries):
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR).user)
    for _ in range(5):
        client.post(ADD, plan_post(alpha))
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:measurements_safetyplan_changelist")).status_code == 200


def test_the_clinicians_number_is_encrypted_masked_and_audited_without_it(client, alpha):
    coordinator = MembershipFactory(study=alpha, role=Role.COORDINATOR).user
    clinician = MembershipFactory(study=alpha, role=Role.INVESTIGATOR)
    url = reverse("admin:cohorts_studymembership_change", args=[clinician.pk])
    client.force_login(coordinator)
    response = client.post(
        url, {"role": Role.INVESTIGATOR, "site": "", "safety_clinician": "on", "new_phone": "07911 123456"}
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert (clinician.safety_clinician, clinician.phone) == (True, "+447911123456")
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM cohorts_studymembership WHERE id = %s", [clinician.pk])
        assert "123456" not in cursor.fetchone()[0]
    page = client.get(url).content.decode()
    assert "•••• 456" in page
    assert "7911123456" not in page
    event = AuditEvent.objects.get(action="membership.safety_contact_changed")
    assert event.detail == {"safety_clinician": True, "phone": "set"}
    assert "123456" not in json.dumps(event.detail)

    # A bad number: refused, nothing changed.
    response = client.post(
        url, {"role": Role.INVESTIGATOR, "site": "", "safety_clinician": "on", "new_phone": "12"}
    )
    assert response.status_code == 200
    assert StudyMembership.objects.get(pk=clinician.pk).phone == "+447911123456"
