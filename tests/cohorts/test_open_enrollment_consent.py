"""Open-link enrollment creates a participant only together with a recorded consent, and consent
POSTs are rate-limited per client."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import AuditEvent, ConsentRecord, Participant, Study
from cohorts.views import CONSENT_POSTS
from tests.factories import ConsentDocumentFactory, StudyFactory

pytestmark = pytest.mark.django_db
STALE = "0" * 64


def consent_post(document, **overrides) -> dict:
    return {
        "text_sha256": hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest(),
        "signature": "Sam Sample",
        "keep_data": "keep",
        **{f"agree_{i}": "on" for i in range(len(document.statement_list))},
        **overrides,
    }


@pytest.fixture
def open_study():
    study = StudyFactory(slug="walk-in", enrollment_mode=Study.EnrollmentMode.OPEN)
    return study, ConsentDocumentFactory(study=study, version=1)


def eligible(client, study) -> None:
    assert client.post(reverse("enroll_open", args=[study.slug]), {"start": "1"}).status_code == 302


def test_refused_consents_create_no_participant_and_a_good_one_creates_exactly_one(client, open_study):
    study, document = open_study
    eligible(client, study)
    for _ in range(8):
        response = client.post(reverse("enroll_consent"), consent_post(document, text_sha256=STALE))
        assert response.status_code == 200
        assert "The consent form has changed. Please read the new version." in response.content.decode()
    assert not Participant.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not AuditEvent.objects.filter(action="participant.self_enrolled").exists()

    response = client.post(reverse("enroll_consent"), consent_post(document))
    assert response.status_code == 302
    participant = Participant.objects.get()
    assert participant.study == study
    assert participant.status == Participant.Status.CONSENTED
    assert participant.consents.count() == 1
    assert client.session["enrollment_participant_id"] == participant.pk
    # The session's open-link step is used up: another consent POST creates nobody.
    client.post(reverse("enroll_consent"), consent_post(document))
    assert Participant.objects.count() == 1


def test_consent_posts_are_rate_limited_per_client(client, open_study):
    study, document = open_study
    eligible(client, study)
    for _ in range(CONSENT_POSTS["limit"]):
        assert (
            client.post(reverse("enroll_consent"), consent_post(document, text_sha256=STALE)).status_code
            == 200
        )
    response = client.post(reverse("enroll_consent"), consent_post(document))
    assert response.status_code == 429
    assert "too many attempts" in response.content.decode()
    assert not Participant.objects.exists()
    assert not ConsentRecord.objects.exists()
    # Another client is not affected.
    other = client.__class__(REMOTE_ADDR="198.51.100.20")
    eligible(other, study)
    assert other.post(reverse("enroll_consent"), consent_post(document)).status_code == 302
    assert Participant.objects.count() == 1
