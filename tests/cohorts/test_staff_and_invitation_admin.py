"""Adding staff by e-mail discloses nothing about existing accounts and never touches an operator's;
only coordinators see invitation links; deleting an invitation is audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from cohorts import services
from cohorts.models import AuditEvent, Invitation, Role, StudyMembership, User
from tests.factories import InvitationFactory, MembershipFactory, ParticipantFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db
ADD = "admin:cohorts_studymembership_add"


@pytest.fixture
def coordinator():
    return MembershipFactory(role=Role.COORDINATOR, study__slug="alpha", study__name="Alpha")


def add_staff(client, study, email: str, capture) -> tuple[int, list[str]]:
    with capture(execute=True):
        response = client.post(
            reverse(ADD), {"study": study.pk, "email": email, "role": Role.INVESTIGATOR, "site": ""}
        )
    shown = client.get(response["Location"]) if response.status_code == 302 else response
    return response.status_code, [str(m) for m in shown.context["messages"]]


def test_adding_staff_tells_the_same_whether_or_not_the_account_exists(
    client, coordinator, django_capture_on_commit_callbacks, mailoutbox
):
    elsewhere = MembershipFactory(role=Role.DATA_MANAGER, user=UserFactory(email="kim@other.example")).user
    client.force_login(coordinator.user)
    study = coordinator.study
    new_status, new_messages = add_staff(client, study, "sam@new.example", django_capture_on_commit_callbacks)
    old_status, old_messages = add_staff(
        client, study, "kim@other.example", django_capture_on_commit_callbacks
    )
    assert new_status == old_status == 302
    added = StudyMembership.objects.filter(study=study).order_by("pk")
    new_pk, old_pk = [m.pk for m in added][-2:]
    assert [m.replace("sam@new.example", "E").replace(f"/{new_pk}/", "/N/") for m in new_messages] == [
        m.replace("kim@other.example", "E").replace(f"/{old_pk}/", "/N/") for m in old_messages
    ]
    assert "sam@new.example now has this role; an e-mail was sent to them." in new_messages
    assert set(StudyMembership.objects.filter(study=study).values_list("user__email", flat=True)) == {
        coordinator.user.email,
        "sam@new.example",
        "kim@other.example",
    }
    # What study staff can read in the audit log does not tell either.
    details = [e.detail for e in AuditEvent.objects.filter(action="membership.granted").order_by("pk")]
    assert details == [{"role": "investigator", "site": None}] * 2
    # Each person hears of it: a new account is asked to set a password, an existing one is told.
    assert [m.to for m in mailoutbox] == [["sam@new.example"], ["kim@other.example"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body
    assert mailoutbox[1].subject == "[Cohort portal] You have a new study role"
    assert "Investigator (read-only) in the study Alpha" in mailoutbox[1].body
    elsewhere.refresh_from_db()
    assert elsewhere.has_usable_password()


def test_an_operator_account_is_never_given_a_study_role(
    client, coordinator, django_capture_on_commit_callbacks, mailoutbox
):
    operator = User.objects.create_superuser("root@portal.example", "a long operator passphrase")
    client.force_login(coordinator.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(ADD),
            {
                "study": coordinator.study.pk,
                "email": "ROOT@portal.example",
                "role": Role.COORDINATOR,
                "site": "",
            },
        )
    assert response.status_code == 200
    assert services.OPERATOR_REFUSED in response.content.decode()
    assert not StudyMembership.objects.filter(user=operator).exists()
    assert not AuditEvent.objects.filter(action="membership.granted").exists()
    assert mailoutbox == []
    with pytest.raises(ValidationError):
        services.membership_grant(
            actor=coordinator.user,
            study=coordinator.study,
            email="root@portal.example",
            role=Role.INVESTIGATOR,
        )
    assert not StudyMembership.objects.filter(user=operator).exists()


@pytest.mark.parametrize(("role", "sees_link"), [(Role.COORDINATOR, True), (Role.INVESTIGATOR, False),
                                                 (Role.DATA_MANAGER, False)])  # fmt: skip
def test_only_coordinators_see_the_invitation_link(client, role, sees_link):
    invitation = InvitationFactory()
    client.force_login(MembershipFactory(study=invitation.study, role=role).user)
    response = client.get(reverse("admin:cohorts_invitation_change", args=[invitation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert invitation.participant.code in html
    assert (invitation.token in html) is sees_link
    assert ("field-qr_code" in html) is sees_link


def test_a_site_coordinator_sees_the_link_of_their_site_only(client):
    invitation = InvitationFactory()
    study = invitation.study
    own = MembershipFactory(study=study, role=Role.COORDINATOR, site=invitation.participant.site).user
    client.force_login(own)
    html = client.get(reverse("admin:cohorts_invitation_change", args=[invitation.pk])).content.decode()
    assert invitation.token in html
    other_site = SiteFactory(study=study)
    elsewhere = InvitationFactory(participant=ParticipantFactory(study=study, site=other_site))
    client.force_login(MembershipFactory(study=study, role=Role.INVESTIGATOR).user)
    html = client.get(reverse("admin:cohorts_invitation_change", args=[elsewhere.pk])).content.decode()
    assert elsewhere.token not in html


def test_deleting_invitations_is_audited(client):
    first = InvitationFactory()
    study = first.study
    second = InvitationFactory(participant=ParticipantFactory(study=study))
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    response = client.post(reverse("admin:cohorts_invitation_delete", args=[first.pk]), {"post": "yes"})
    assert response.status_code == 302
    response = client.post(
        reverse("admin:cohorts_invitation_changelist"),
        {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Invitation.objects.exists()
    events = AuditEvent.objects.filter(action="invitation.deleted").order_by("pk")
    assert [(e.actor, e.study, e.participant, e.target) for e in events] == [
        (coordinator, study, first.participant, first.participant.code),
        (coordinator, study, second.participant, second.participant.code),
    ]
    assert events[0].detail == {"expires_at": first.expires_at.isoformat(), "used": False}


def test_an_investigator_cannot_delete_an_invitation(client):
    invitation = InvitationFactory()
    client.force_login(MembershipFactory(study=invitation.study, role=Role.INVESTIGATOR).user)
    response = client.post(reverse("admin:cohorts_invitation_delete", args=[invitation.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    assert not AuditEvent.objects.filter(action="invitation.deleted").exists()
