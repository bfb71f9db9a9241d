"""Invitations in one step: adding a participant creates the invitation too (code generated, the
study's time zone, an expiry) and opens the handout (QR code, copy, print, PDF). No invitation for a
participant already enrolled; nothing is created then. Handouts are for the study's coordinators."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from cohorts import enrollment
from cohorts.models import AuditEvent, Invitation, Participant, Role
from tests.cohorts.test_relink_help import pdf_text
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db
ADD = "admin:cohorts_participant_add"


@pytest.fixture
def coordinator():
    study = StudyFactory(slug="alpha", name="Alpha", default_timezone="America/Chicago")
    return MembershipFactory(study=study, role=Role.COORDINATOR)


def add_form(study, place, **changes) -> dict:
    data = {
        "study": study.pk,
        "site": place.pk,
        "code": "",
        "timezone": "",
        "start_date": "",
        "end_date": "",
        "invite": "on",
        "invitation_days": "10",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_adding_a_participant_creates_the_invitation_and_opens_the_handout(client, coordinator):
    study = coordinator.study
    site = SiteFactory(study=study)
    client.force_login(coordinator.user)
    form = client.get(reverse(ADD)).content.decode()
    assert "Create an invitation now" in form
    assert f'<option value="{study.pk}" selected>' in form  # their only study, chosen already
    started = timezone.now()
    response = client.post(reverse(ADD), add_form(study, site))
    assert response.status_code == 302
    participant = Participant.objects.get(study=study)
    invitation = Invitation.objects.get(participant=participant)
    assert response["Location"] == reverse("admin:cohorts_invitation_handout", args=[invitation.pk])
    assert participant.code.startswith("AL-")
    assert len(participant.code) == 9
    assert (participant.timezone, participant.status) == ("America/Chicago", "invited")
    assert participant.site == site
    assert started + dt.timedelta(days=10) <= invitation.expires_at <= timezone.now() + dt.timedelta(days=10)
    assert (invitation.study, invitation.created_by) == (study, coordinator.user)
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "actor", "participant")) == [
        ("participant.created", coordinator.user.pk, participant.pk),
        ("invitation.created", coordinator.user.pk, participant.pk),
    ]

    handout = client.get(response["Location"])
    html = handout.content.decode()
    link = f"http://127.0.0.1:8000/enroll/invite/{invitation.token}/"
    assert f'<code id="handout-url">{link}</code>' in html
    assert 'data-copy-target="handout-url"' in html
    assert '<script src="/static/js/copy-button.js" defer></script>' in html
    assert "<svg" in html
    assert 'class="handout-qr"' in html
    assert reverse("admin:cohorts_invitation_handout_pdf", args=[invitation.pk]) in html
    assert "(America/Chicago time)" in html
    assert f"{participant.code} was added with an invitation." in html


def test_without_the_invitation_box_only_the_participant_is_created(client, coordinator):
    site = SiteFactory(study=coordinator.study)
    client.force_login(coordinator.user)
    form = add_form(coordinator.study, site, code="AL-MANUAL", timezone="Europe/Paris", invite=None)
    response = client.post(reverse(ADD), form)
    assert response.status_code == 302
    participant = Participant.objects.get(code="AL-MANUAL")
    assert response["Location"] == reverse("admin:cohorts_participant_changelist")
    assert participant.timezone == "Europe/Paris"
    assert not Invitation.objects.exists()


def test_the_handout_pdf_is_a_pdf_with_the_link(client, coordinator):
    participant = ParticipantFactory(study=coordinator.study, code="AL-100", status="invited")
    invitation = enrollment.invitation_create(
        actor=None,
        invitation=Invitation(
            study=participant.study, participant=participant, expires_at=timezone.now() + dt.timedelta(days=3)
        ),
    )
    client.force_login(coordinator.user)
    response = client.get(reverse("admin:cohorts_invitation_handout_pdf", args=[invitation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invitation-AL-100.pdf"'
    text = pdf_text(response.content)
    assert f"http://127.0.0.1:8000/enroll/invite/{invitation.token}/" in text
    assert "Invitation to the study Alpha" in text
    assert b"/Subtype /Image" in response.content  # the QR code


@pytest.mark.parametrize("status", ["consented", "linked", "active", "withdrawn"])
def test_no_invitation_for_a_participant_already_enrolled_or_gone(client, coordinator, status):
    participant = ParticipantFactory(study=coordinator.study, code="AL-200", status=status)
    client.force_login(coordinator.user)
    expires = timezone.localtime() + dt.timedelta(days=5)
    response = client.post(
        reverse("admin:cohorts_invitation_add"),
        {
            "study": coordinator.study.pk,
            "participant": participant.pk,
            "expires_at_0": expires.date().isoformat(),
            "expires_at_1": expires.time().replace(microsecond=0).isoformat(),
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "AL-200 is already enrolled" in html or "AL-200 has left the study" in html
    assert "no invitation was created" in html
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="invitation.").exists()
    with pytest.raises(enrollment.InvitationRefused):
        enrollment.invitation_create(
            actor=coordinator.user,
            invitation=Invitation(study=participant.study, participant=participant, expires_at=expires),
        )
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="invitation.").exists()


@pytest.mark.parametrize("who", ["other_study", "other_site", "data_manager"])
def test_handouts_are_for_the_participants_coordinators_only(client, coordinator, who):
    site = SiteFactory(study=coordinator.study)
    participant = ParticipantFactory(study=coordinator.study, site=site, status="invited")
    invitation = Invitation.objects.create(
        study=participant.study, participant=participant, expires_at=timezone.now() + dt.timedelta(days=3)
    )
    membership = {
        "other_study": lambda: MembershipFactory(role=Role.COORDINATOR),
        "other_site": lambda: MembershipFactory(
            study=coordinator.study, role=Role.COORDINATOR, site=SiteFactory(study=coordinator.study)
        ),
        "data_manager": lambda: MembershipFactory(study=coordinator.study, role=Role.DATA_MANAGER),
    }[who]()
    client.force_login(membership.user)
    for name in ("admin:cohorts_invitation_handout", "admin:cohorts_invitation_handout_pdf"):
        response = client.get(reverse(name, args=[invitation.pk]))
        assert response.status_code == 404
        assert invitation.token not in response.content.decode(errors="replace")


def test_a_site_coordinator_adding_without_a_site_is_told_on_the_form(client, coordinator):
    study = coordinator.study
    north = SiteFactory(study=study, name="North clinic")
    limited = MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user
    client.force_login(limited)
    form = client.get(reverse(ADD)).content.decode()
    assert f'<option value="{north.pk}" selected>' in form  # their site, chosen already
    response = client.post(reverse(ADD), add_form(study, north, site=""))
    assert response.status_code == 200
    assert "You can only add or change records at: Alpha — North clinic." in response.content.decode()
    assert not Participant.objects.exists()
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()
    assert client.post(reverse(ADD), add_form(study, north)).status_code == 302
    assert Participant.objects.get().site == north
