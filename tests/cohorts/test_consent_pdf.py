"""The consent form as a PDF: before consenting (the text offered) and after (the text signed and the
record). Exactly the text shown, never the private token."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import AuditEvent, ConsentRecord, Participant
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory
from tests.pdf_text import pdf_text

pytestmark = pytest.mark.django_db

BODY = (
    "We collect your home blood pressure readings — nothing else.\n"
    "Lines wrapped by hand are one paragraph.\n\n"
    "Vous pouvez arrêter à tout moment : « sans justification ». Zażółć gęślą jaźń."
)
STATEMENTS = "I have read the information.\nI agree to share my readings (systolic, diastolic, pulse)."


def words(text: str) -> str:
    return " ".join(text.split())


def _consent(participant, document) -> enrollment.ConsentOutcome:
    digest = hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest()
    return enrollment.participant_give_consent(
        participant=participant, document=document, shown_text_sha256=digest, signature="Kim Zając",
        keep_data_on_withdrawal=False,
    )  # fmt: skip


def test_the_offered_form_downloads_as_a_pdf_with_exactly_the_text_shown(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    document = ConsentDocumentFactory(
        study=participant.study, version=3, title="Consent — Étude", body=BODY, statements=STATEMENTS
    )
    invitation = InvitationFactory(participant=participant)
    client.get(reverse("enroll_invitation", args=[invitation.token]))
    page = client.get(reverse("enroll_consent")).content.decode()
    assert reverse("enroll_consent_pdf") in page
    response = client.get(reverse("enroll_consent_pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"] == f'attachment; filename="consent-{participant.study.slug}-v3.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    text = words(pdf_text(response.content))
    shown = enrollment.render_consent_text(document).split("\n\n")
    for part in shown:  # title, version, every paragraph and statement, as on the page
        assert words(part) in text
    assert "Zażółć gęślą jaźń." in text
    assert "Your consent" not in text  # nothing signed yet
    assert invitation.token not in text
    assert invitation.token.encode() not in response.content
    assert not ConsentRecord.objects.exists()


def test_without_an_enrollment_in_progress_there_is_no_pdf(client):
    response = client.get(reverse("enroll_consent_pdf"))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_the_signed_copy_has_the_record_and_never_the_private_token(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED, code="HB-042")
    document = ConsentDocumentFactory(study=participant.study, version=2, body=BODY, statements=STATEMENTS)
    outcome = _consent(participant, document)
    record = outcome.record
    status = client.get(reverse("participant_status", args=[outcome.status_token])).content.decode()
    url = reverse("participant_consent_pdf", args=[outcome.status_token])
    assert url in status
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"] == f'attachment; filename="consent-{participant.study.slug}-v2.pdf"'
    )
    text = words(pdf_text(response.content))
    for part in record.rendered_text.split("\n\n"):
        assert words(part) in text
    assert "Consent form version: 2" in text
    assert f"Date and time (UTC): {record.consented_at:%Y-%m-%d %H:%M:%S}" in text
    assert "Readings collected so far if you leave the study: delete them" in text
    assert "Signed (typed name): Kim Zając" in text
    assert "Participant code: HB-042" in text
    assert record.text_sha256 in text
    assert outcome.status_token not in text
    assert outcome.status_token.encode() not in response.content
    assert "/p/" not in text


def test_a_wrong_token_gets_no_pdf_and_nothing_is_recorded(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    _consent(participant, ConsentDocumentFactory(study=participant.study, version=1))
    events = AuditEvent.objects.count()
    response = client.get(reverse("participant_consent_pdf", args=["not-a-real-token-at-all"]))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert AuditEvent.objects.count() == events
