"""Consent text on a phone: blank lines make paragraphs, the source's hard line breaks do not survive,
HTML in the text is escaped — on the consent form and in the copy linked from the status page."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import Participant
from cohorts.templatetags.consent_text import consent_paragraphs
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

BODY = (
    "If you take part, you measure your blood pressure\n"
    "twice in the morning and twice in the evening.\r\n"
    "\r\n"
    "The study team sees a study code, not your name.\n"
    "  \n"
    "Questions <b>welcome</b> & answered.\n"
    "Really.\n\n\n"
)
PARAGRAPHS = (
    "<p>If you take part, you measure your blood pressure twice in the morning and twice in the "
    "evening.</p>\n"
    "<p>The study team sees a study code, not your name.</p>\n"
    "<p>Questions &lt;b&gt;welcome&lt;/b&gt; &amp; answered. Really.</p>"
)


def test_filter_joins_single_newlines_splits_on_blank_lines_and_escapes():
    assert consent_paragraphs(BODY) == PARAGRAPHS
    assert consent_paragraphs("") == ""


def test_consent_form_renders_paragraphs_without_hard_breaks(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    ConsentDocumentFactory(study=participant.study, version=1, body=BODY)
    client.get(reverse("enroll_invitation", args=[InvitationFactory(participant=participant).token]))
    html = client.get(reverse("enroll_consent")).content.decode()
    block = html.split('<div class="consent-text">')[1].split("</div>")[0]
    assert block.strip() == PARAGRAPHS
    assert "<br" not in block
    assert "<b>" not in html


def test_consent_copy_renders_paragraphs_of_what_was_signed(client):
    participant = ParticipantFactory(status=Participant.Status.INVITED)
    document = ConsentDocumentFactory(study=participant.study, version=1, body=BODY, title="Consent")
    digest = hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest()
    outcome = enrollment.participant_give_consent(
        participant=participant, document=document, shown_text_sha256=digest, signature="Kim",
        keep_data_on_withdrawal=False,
    )  # fmt: skip
    html = client.get(reverse("participant_consent_copy", args=[outcome.status_token])).content.decode()
    block = html.split('<div class="consent-text">')[1].split("</div>")[0]
    assert block == (
        "<p>Consent</p>\n<p>Version 1</p>\n"
        + PARAGRAPHS
        + "\n<p>I have read the information.</p>\n<p>I agree to share my readings.</p>"
    )
    assert "<pre>" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
