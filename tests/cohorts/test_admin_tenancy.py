"""Staff of study A see nothing of study B in any admin page, and roles limit what they may change."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.urls import reverse

from cohorts.models import (
    AuditEvent,
    Invitation,
    Participant,
    ParticipantContact,
    Role,
    Site,
    StudyMembership,
)
from tests.factories import (
    AuditEventFactory,
    InvitationFactory,
    MembershipFactory,
    ParticipantFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
)

B_MARKERS = (
    "Bravo Secret Study", "bravo-secret", "Bravo Clinic", "BRAVO-LEAK", "bravo-coord@", "bravo-person@",
    "+33612345602",
)  # fmt: skip


@dataclass
class World:
    study_a: object
    study_b: object
    site_a1: Site
    site_a2: Site
    site_b: Site
    a_participants: list
    b_participant: Participant
    b_objects: dict
    users: dict


@pytest.fixture
def world(db) -> World:
    study_a = StudyFactory(slug="alpha", name="Alpha Study")
    study_b = StudyFactory(slug="bravo-secret", name="Bravo Secret Study")
    site_a1 = SiteFactory(study=study_a, code="a1", name="Alpha North")
    site_a2 = SiteFactory(study=study_a, code="a2", name="Alpha South")
    site_b = SiteFactory(study=study_b, code="b1", name="Bravo Clinic")
    a1 = ParticipantFactory(study=study_a, site=site_a1, code="ALPHA-001")
    a2 = ParticipantFactory(study=study_a, site=site_a2, code="ALPHA-002")
    b = ParticipantFactory(study=study_b, site=site_b, code="BRAVO-LEAK-1")
    b_coord = MembershipFactory(
        study=study_b, role=Role.COORDINATOR, user=UserFactory(email="bravo-coord@b.example")
    )
    b_invitation = InvitationFactory(participant=b)
    b_audit = AuditEventFactory(participant=b, target="BRAVO-LEAK-1")
    b_contact = ParticipantContact.objects.create(
        participant=b, email="bravo-person@b.example", phone="+33612345602"
    )
    InvitationFactory(participant=a1)
    AuditEventFactory(participant=a1)
    users = {
        "coordinator": MembershipFactory(study=study_a, role=Role.COORDINATOR).user,
        "site_coordinator": MembershipFactory(study=study_a, role=Role.COORDINATOR, site=site_a1).user,
        "data_manager": MembershipFactory(study=study_a, role=Role.DATA_MANAGER).user,
        "investigator": MembershipFactory(study=study_a, role=Role.INVESTIGATOR).user,
        "no_membership": UserFactory(),
    }
    b_objects = {
        "study": study_b,
        "site": site_b,
        "studymembership": b_coord,
        "participant": b,
        "invitation": b_invitation,
        "auditevent": b_audit,
        "participantcontact": b_contact,
    }
    return World(study_a, study_b, site_a1, site_a2, site_b, [a1, a2], b, b_objects, users)


def cohort_admin_models():
    return [m for m in admin.site._registry if m._meta.app_label == "cohorts"]


def assert_no_leak(response, token: str) -> None:
    html = response.content.decode()
    for marker in (*B_MARKERS, token):
        assert marker not in html, f"{marker!r} leaked into {response.request['PATH_INFO']}"


STAFF_ROLES = ["coordinator", "site_coordinator", "data_manager", "investigator", "no_membership"]


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_changelists_search_and_filters_show_nothing_of_another_study(client, world, role):
    client.force_login(world.users[role])
    token = world.b_objects["invitation"].token
    b = world.b_objects
    for model in cohort_admin_models():
        url = reverse(f"admin:cohorts_{model._meta.model_name}_changelist")
        queries = [
            "",
            "?q=BRAVO",
            "?q=bravo",
            f"?study__id__exact={world.study_b.pk}",
            f"?site__id__exact={world.site_b.pk}",
            f"?participant__id__exact={world.b_participant.pk}",
        ]
        for query in queries:
            response = client.get(url + query, follow=True)
            assert response.status_code in (200, 403)
            assert_no_leak(response, token)
        listing = client.get(url)
        coordinators_only = model._meta.model_name == "participantcontact"
        if role == "no_membership" or model._meta.model_name == "user":
            assert listing.status_code == 403
        elif coordinators_only and role in ("data_manager", "investigator"):
            assert listing.status_code == 403  # contact details: coordinators only
        else:
            assert listing.status_code == 200
            shown = {obj.pk for obj in listing.context["cl"].result_list}
            assert b.get(model._meta.model_name, None) is None or (b[model._meta.model_name].pk not in shown)


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_object_pages_of_another_study_are_refused_and_nothing_changes(client, world, role):
    client.force_login(world.users[role])
    token = world.b_objects["invitation"].token
    for name, obj in world.b_objects.items():
        base = f"admin:cohorts_{name}"
        for view in ("change", "history", "delete"):
            response = client.get(reverse(f"{base}_{view}", args=[obj.pk]), follow=True)
            assert response.status_code in (200, 403, 404)
            assert_no_leak(response, token)
        client.post(reverse(f"{base}_delete", args=[obj.pk]), {"post": "yes"})
        client.post(
            reverse(f"{base}_changelist"),
            {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
        )
        assert type(obj).objects.filter(pk=obj.pk).exists(), f"{name} of study B was deleted"
    # A change POST to B's participant does nothing.
    client.post(
        reverse("admin:cohorts_participant_change", args=[world.b_participant.pk]),
        {
            "study": world.study_b.pk,
            "site": world.site_b.pk,
            "code": "HIJACKED",
            "status": "withdrawn",
            "timezone": "UTC",
        },
    )
    world.b_participant.refresh_from_db()
    assert world.b_participant.code == "BRAVO-LEAK-1"
    assert world.b_participant.status == Participant.Status.ACTIVE


def test_site_restricted_coordinator_sees_only_their_site(client, world):
    client.force_login(world.users["site_coordinator"])
    response = client.get(reverse("admin:cohorts_participant_changelist"))
    codes = {p.code for p in response.context["cl"].result_list}
    assert codes == {"ALPHA-001"}
    other = world.a_participants[1]
    response = client.get(reverse("admin:cohorts_participant_change", args=[other.pk]), follow=True)
    assert "ALPHA-002" not in response.content.decode()


def participant_form(participant, **changes):
    data = {
        "study": participant.study_id,
        "site": participant.site_id,
        "code": participant.code,
        "status": participant.status,
        "timezone": participant.timezone,
        "start_date": "",
        "end_date": "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("role", ["investigator", "data_manager"])
def test_read_only_roles_cannot_change_or_add_participants(client, world, role):
    client.force_login(world.users[role])
    participant = world.a_participants[0]
    url = reverse("admin:cohorts_participant_change", args=[participant.pk])
    page = client.get(url)
    assert page.status_code == 200  # they may look
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url, participant_form(participant, status="withdrawn"))
    assert response.status_code == 403
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    before = Participant.objects.count()
    response = client.post(
        reverse("admin:cohorts_participant_add"),
        participant_form(participant, code="NEW-1"),
    )
    assert response.status_code == 403
    assert Participant.objects.count() == before
    assert not AuditEvent.objects.filter(action__startswith="participant.changed").exists()


def test_investigator_cannot_change_anything(client, world):
    client.force_login(world.users["investigator"])
    for model in cohort_admin_models():
        name = model._meta.model_name
        if name == "user":
            continue
        response = client.get(reverse(f"admin:cohorts_{name}_add"))
        assert response.status_code == 403, name
    membership = StudyMembership.objects.get(user=world.users["investigator"])
    response = client.post(
        reverse("admin:cohorts_studymembership_change", args=[membership.pk]),
        {"role": Role.COORDINATOR, "site": ""},
    )
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.INVESTIGATOR


def test_coordinator_change_is_saved_and_audited(client, world):
    user = world.users["coordinator"]
    client.force_login(user)
    participant = world.a_participants[0]
    response = client.post(
        reverse("admin:cohorts_participant_change", args=[participant.pk]),
        participant_form(participant, status="withdrawn", timezone="America/New_York"),
    )
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.status == "withdrawn"
    event = AuditEvent.objects.get(action="participant.changed", participant=participant)
    assert event.actor == user
    assert event.detail == {
        "status": ["active", "withdrawn"],
        "timezone": ["Europe/Paris", "America/New_York"],
    }


def test_coordinator_cannot_move_a_participant_into_another_study(client, world):
    client.force_login(world.users["coordinator"])
    participant = world.a_participants[0]
    response = client.post(
        reverse("admin:cohorts_participant_change", args=[participant.pk]),
        participant_form(participant, study=world.study_b.pk, site=world.site_b.pk),
    )
    assert response.status_code == 200  # the form refuses the choice
    participant.refresh_from_db()
    assert participant.study_id == world.study_a.pk


def test_site_coordinator_cannot_grant_study_wide_roles(client, world):
    client.force_login(world.users["site_coordinator"])
    response = client.post(
        reverse("admin:cohorts_studymembership_add"),
        {
            "study": world.study_a.pk,
            "email": "new.person@example.org",
            "role": "coordinator",
            "site": "",
        },
    )
    assert response.status_code == 403
    assert not StudyMembership.objects.filter(user__email="new.person@example.org").exists()


def test_coordinator_grants_role_creates_account_sends_mail_and_audits(
    client, world, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(world.users["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:cohorts_studymembership_add"),
            {
                "study": world.study_a.pk,
                "email": "New.Person@Example.org",
                "role": "investigator",
                "site": world.site_a2.pk,
            },
        )
    assert response.status_code == 302
    membership = StudyMembership.objects.get(user__email="new.person@example.org")
    assert (membership.study, membership.role, membership.site) == (
        world.study_a,
        Role.INVESTIGATOR,
        world.site_a2,
    )
    assert membership.user.is_staff
    assert not membership.user.has_usable_password()
    assert [m.to for m in mailoutbox] == [["new.person@example.org"]]
    event = AuditEvent.objects.get(action="membership.granted")
    assert event.study == world.study_a
    assert event.target == "new.person@example.org"
    assert event.detail == {"role": "investigator", "site": "a2"}


def test_membership_change_and_revoke_are_audited(client, world):
    client.force_login(world.users["coordinator"])
    membership = StudyMembership.objects.get(user=world.users["investigator"])
    response = client.post(
        reverse("admin:cohorts_studymembership_change", args=[membership.pk]),
        {"role": Role.DATA_MANAGER, "site": world.site_a1.pk},
    )
    assert response.status_code == 302
    changed = AuditEvent.objects.get(action="membership.changed")
    assert changed.detail == {"role": ["investigator", "data_manager"], "site": [None, "a1"]}
    response = client.post(
        reverse("admin:cohorts_studymembership_delete", args=[membership.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not StudyMembership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.revoked", study=world.study_a).count() == 1


def test_audit_log_is_read_only_even_for_superusers(client, world):
    operator = UserFactory(is_superuser=True)
    client.force_login(operator)
    event = world.b_objects["auditevent"]
    url = reverse("admin:cohorts_auditevent_change", args=[event.pk])
    assert 'name="_save"' not in client.get(url).content.decode()
    assert client.post(url, {"action": "x"}).status_code == 403
    assert (
        client.post(reverse("admin:cohorts_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk, action="participant.viewed").exists()


def test_invitation_page_shows_link_and_qr_code(client, world):
    client.force_login(world.users["coordinator"])
    invitation = Invitation.objects.get(participant=world.a_participants[0])
    html = client.get(reverse("admin:cohorts_invitation_change", args=[invitation.pk])).content.decode()
    assert f"/enroll/invite/{invitation.token}/" in html
    assert "<svg" in html
