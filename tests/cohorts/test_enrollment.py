"""Enrollment rules without a browser: tokens, versions, rate limits, withdrawal by a coordinator."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from cohorts import enrollment
from cohorts.models import AuditEvent, ConsentDocument, ConsentRecord, Participant, Role, Study
from measurements.models import BloodPressureReading
from tests.factories import (
    ConsentDocumentFactory,
    InvitationFactory,
    MembershipFactory,
    ParticipantFactory,
    ReadingFactory,
    StudyFactory,
)

pytestmark = pytest.mark.django_db


def consent_post(document: ConsentDocument, **overrides) -> dict:
    data = {
        "text_sha256": hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest(),
        "signature": "Sam Sample",
        "keep_data": "keep",
        **{f"agree_{i}": "on" for i in range(len(document.statement_list))},
    }
    data.update(overrides)
    return data


def test_consent_needs_every_box_and_a_signature_and_records_exactly_what_was_shown(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    document = ConsentDocumentFactory(study=participant.study, version=1)
    invitation = InvitationFactory(participant=participant)
    client.get(reverse("enroll_invitation", args=[invitation.token]))
    response = client.post(reverse("enroll_consent"), consent_post(document, agree_1="", signature=""))
    assert response.status_code == 200
    assert not ConsentRecord.objects.exists()
    response = client.post(reverse("enroll_consent"), consent_post(document))
    assert response.status_code == 302
    record = ConsentRecord.objects.get()
    assert record.rendered_text == enrollment.render_consent_text(document)
    assert record.text_sha256 == hashlib.sha256(record.rendered_text.encode()).hexdigest()
    assert record.signature == "Sam Sample"
    participant.refresh_from_db()
    assert participant.status == Participant.Status.CONSENTED
    assert client.session["enrollment_participant_id"] == participant.pk


def test_a_new_consent_version_published_meanwhile_is_not_signed_blindly(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    old = ConsentDocumentFactory(study=participant.study, version=1)
    invitation = InvitationFactory(participant=participant)
    client.get(reverse("enroll_invitation", args=[invitation.token]))
    enrollment.consent_document_publish(
        actor=None, study=participant.study, title="New", body="Changed text", statements="I agree."
    )
    response = client.post(reverse("enroll_consent"), consent_post(old))
    assert response.status_code == 200
    assert "changed" in response.content.decode()
    assert not ConsentRecord.objects.exists()
    invitation.refresh_from_db()
    assert invitation.used_at is None


def test_editing_a_consent_document_in_the_admin_creates_a_new_version(client):
    coordinator = MembershipFactory(role=Role.COORDINATOR)
    document = ConsentDocumentFactory(study=coordinator.study, version=1, body="Old body")
    client.force_login(coordinator.user)
    response = client.post(
        reverse("admin:cohorts_consentdocument_change", args=[document.pk]),
        {"title": "Consent", "body": "New body", "statements": "I agree."},
    )
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.body == "Old body"  # the signed version is untouched
    latest = enrollment.current_consent(coordinator.study)
    assert (latest.version, latest.body) == (2, "New body")
    assert AuditEvent.objects.filter(action="consent.published", study=coordinator.study).count() == 1


def test_invitation_tokens_cannot_be_guessed(client):
    for i in range(20):
        response = client.get(reverse("enroll_invitation", args=[f"guess-{i}"]))
        assert response.status_code == 404
    valid = InvitationFactory()
    response = client.get(reverse("enroll_invitation", args=[valid.token]))
    assert response.status_code == 429  # blocked even for a valid token while the limit holds
    assert "enroll_invitation_id" not in client.session


def test_status_tokens_cannot_be_guessed_and_hold_no_identifier(client):
    participant = ParticipantFactory()
    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    assert str(participant.pk) not in token
    assert participant.code not in token
    assert client.get(reverse("participant_status", args=[token])).status_code == 200
    for i in range(20):
        client.get(reverse("participant_status", args=[f"x{i}"]))
    assert client.get(reverse("participant_status", args=[token])).status_code == 429
    participant.refresh_from_db()
    assert participant.status_token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_open_link_only_for_open_active_studies(client):
    closed = StudyFactory(enrollment_mode=Study.EnrollmentMode.INVITE_ONLY)
    assert client.get(reverse("enroll_open", args=[closed.slug])).status_code == 404
    client.post(reverse("enroll_open", args=[closed.slug]), {})
    assert not Participant.objects.exists()


def test_expired_invitation_changes_nothing(client):
    invitation = InvitationFactory(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(reverse("enroll_invitation", args=[invitation.token]))
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert "enroll_invitation_id" not in client.session


def test_coordinator_withdraws_from_the_admin_and_readings_are_kept_per_consent(
    client, django_capture_on_commit_callbacks
):
    coordinator = MembershipFactory(role=Role.COORDINATOR)
    participant = ParticipantFactory(study=coordinator.study)
    document = ConsentDocumentFactory(study=participant.study, version=1)
    ConsentRecord.objects.create(
        participant=participant, document=document, version=1, text_sha256="x" * 64, rendered_text="t",
        signature="S", keep_data_on_withdrawal=True,
    )  # fmt: skip
    ReadingFactory.create_batch(3, participant=participant)
    client.force_login(coordinator.user)
    url = reverse("admin:cohorts_participant_changelist")
    payload = {"action": "withdraw_participants", "_selected_action": [participant.pk]}
    response = client.post(url, payload)
    assert response.status_code == 200  # the confirmation page
    participant.refresh_from_db()
    assert participant.status != Participant.Status.WITHDRAWN
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {**payload, "confirm": "yes"})
    participant.refresh_from_db()
    assert participant.status == Participant.Status.WITHDRAWN
    assert BloodPressureReading.objects.filter(participant=participant).count() == 3
    event = AuditEvent.objects.get(action="participant.withdrawn")
    assert event.actor == coordinator.user
    assert event.detail["keep_data"] is True
    assert AuditEvent.objects.filter(action="readings.kept_on_withdrawal").count() == 1


def test_investigator_cannot_withdraw(client):
    investigator = MembershipFactory(role=Role.INVESTIGATOR)
    participant = ParticipantFactory(study=investigator.study)
    client.force_login(investigator.user)
    client.post(
        reverse("admin:cohorts_participant_changelist"),
        {"action": "withdraw_participants", "_selected_action": [participant.pk], "confirm": "yes"},
    )
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    assert not AuditEvent.objects.filter(action="participant.withdrawn").exists()


def test_consent_copy_download(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    document = ConsentDocumentFactory(study=participant.study, version=1)
    outcome = enrollment.participant_give_consent(
        participant=participant, document=document,
        shown_text_sha256=hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest(),
        signature="Kim", keep_data_on_withdrawal=False,
    )  # fmt: skip
    response = client.get(reverse("participant_consent_copy", args=[outcome.status_token]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    html = response.content.decode()
    assert document.statement_list[0] in html
    assert outcome.record.text_sha256 in html
    assert "delete the readings" in html
