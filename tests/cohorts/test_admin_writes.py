"""The cohorts admin only calls services: study and invitation saves are audited by services, the
e-mail to new staff is sent by one, and the admin module itself writes no audit record nor e-mail."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

import cohorts.admin
from cohorts import enrollment, services
from cohorts.models import AuditEvent, Invitation, Role, Study
from tests.factories import MembershipFactory, ParticipantFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def study_form(study: Study, **changes) -> dict:
    data = {
        "name": study.name,
        "status": study.status,
        "enrollment_mode": study.enrollment_mode,
        "default_timezone": study.default_timezone,
        "contact_email": study.contact_email,
        "contact_phone": study.contact_phone,
        "languages": study.languages,
        "start_date": "",
        "end_date": "",
        "eligibility_questions-TOTAL_FORMS": "0",
        "eligibility_questions-INITIAL_FORMS": "0",
        "eligibility_questions-MIN_NUM_FORMS": "0",
        "eligibility_questions-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


def test_a_coordinator_changing_study_settings_is_audited_by_the_service(client):
    membership = MembershipFactory(role=Role.COORDINATOR, study__slug="alpha", study__name="Alpha")
    study = membership.study
    client.force_login(membership.user)
    response = client.post(
        reverse("admin:cohorts_study_change", args=[study.pk]),
        study_form(study, name="Alpha (renamed)", contact_email="team@alpha.example"),
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.name, study.contact_email) == ("Alpha (renamed)", "team@alpha.example")
    events = list(AuditEvent.objects.filter(action__startswith="study."))
    assert [(e.action, e.actor, e.study, e.target, e.detail) for e in events] == [
        ("study.changed", membership.user, study, "alpha", {"fields": ["name", "contact_email"]})
    ]


def test_an_operator_creating_a_study_is_audited_by_the_service(client):
    operator = UserFactory(is_superuser=True)
    client.force_login(operator)
    response = client.post(
        reverse("admin:cohorts_study_add"), study_form(Study(name="Gamma"), slug="gamma", status="draft")
    )
    assert response.status_code == 302
    study = Study.objects.get(slug="gamma")
    event = AuditEvent.objects.get(action="study.created")
    assert (event.actor, event.study, event.target) == (operator, study, "gamma")
    assert sorted(event.detail["fields"]) == ["name", "slug"]


def test_refused_study_change_writes_nothing(client):
    membership = MembershipFactory(role=Role.INVESTIGATOR, study__name="Alpha")
    client.force_login(membership.user)
    response = client.post(
        reverse("admin:cohorts_study_change", args=[membership.study.pk]),
        study_form(membership.study, name="Hijacked"),
    )
    assert response.status_code == 403
    membership.study.refresh_from_db()
    assert membership.study.name == "Alpha"
    assert not AuditEvent.objects.exists()


def test_adding_and_changing_an_invitation_in_the_admin_is_audited_by_the_service(client):
    participant = ParticipantFactory(code="AL-001", status="invited")  # only those not enrolled yet
    coordinator = MembershipFactory(study=participant.study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    expires = (timezone.localtime() + dt.timedelta(days=10)).replace(microsecond=0, second=0)
    response = client.post(
        reverse("admin:cohorts_invitation_add"),
        {
            "study": participant.study.pk,
            "participant": participant.pk,
            "expires_at_0": expires.date().isoformat(),
            "expires_at_1": expires.time().isoformat(),
        },
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.created_by == coordinator
    later = expires + dt.timedelta(days=5)
    response = client.post(
        reverse("admin:cohorts_invitation_change", args=[invitation.pk]),
        {
            "study": participant.study.pk,
            "participant": participant.pk,
            "expires_at_0": later.date().isoformat(),
            "expires_at_1": later.time().isoformat(),
        },
    )
    assert response.status_code == 302
    events = AuditEvent.objects.filter(action__startswith="invitation.").order_by("pk")
    assert [(e.action, e.actor, e.participant, e.target, e.detail) for e in events] == [
        ("invitation.created", coordinator, participant, "AL-001", {"expires_at": expires.isoformat()}),
        ("invitation.changed", coordinator, participant, "AL-001", {"expires_at": later.isoformat()}),
    ]


def test_invitation_services_record_the_system_as_actor_without_a_user():
    participant = ParticipantFactory(status="invited")
    invitation = enrollment.invitation_create(
        actor=None,
        invitation=Invitation(
            study=participant.study, participant=participant, expires_at=timezone.now() + dt.timedelta(days=3)
        ),
    )
    assert invitation.pk is not None
    assert invitation.created_by is None
    event = AuditEvent.objects.get(action="invitation.created")
    assert (event.actor, event.actor_label, event.study) == (None, "system", participant.study)


def test_study_services_save_and_audit_in_one_transaction():
    study = StudyFactory(slug="beta")
    study.name = "Beta two"
    services.study_update(actor=None, study=study, fields=["name"])
    assert Study.objects.get(pk=study.pk).name == "Beta two"
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_label, event.detail) == (
        "study.changed",
        "system",
        {"fields": ["name"]},
    )


def test_membership_welcome_sends_after_commit_only(rf, django_capture_on_commit_callbacks, mailoutbox):
    existing = MembershipFactory(role=Role.INVESTIGATOR, study__name="Alpha")
    newcomer = MembershipFactory(role=Role.DATA_MANAGER, study=existing.study)
    request = rf.get("/admin/")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.membership_welcome(request=request, membership=existing, new_account=False)
        services.membership_welcome(request=request, membership=newcomer, new_account=True)
    assert mailoutbox == []
    for callback in callbacks:
        callback()
    assert [m.to for m in mailoutbox] == [[existing.user.email], [newcomer.user.email]]
    assert mailoutbox[0].subject == "[Cohort portal] You have a new study role"
    assert "/accounts/password/reset/key/" in mailoutbox[1].body


WRITES = {"audit_record", "send_mail", "on_commit", "coordinators_notify", "membership_notify_granted"}


def test_the_cohorts_admin_module_writes_no_audit_record_nor_e_mail_itself():
    tree = ast.parse(Path(cohorts.admin.__file__).read_text())
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert called & WRITES == set()
