"""Participants read the study in their own language: chosen at enrollment (the browser's language by
default), stored on the participant, changeable on the private page; the consent is recorded in the
language shown with the hash of that exact text; messages go out in the participant's language; a
study cannot open enrollment in a language its current consent version lacks; the admin stays English."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cohorts import enrollment
from cohorts.models import AuditEvent, ConsentRecord, ConsentText, Participant, ParticipantContact, Study
from messaging import dispatch, services
from messaging.models import Reason
from tests.factories import ConsentDocumentFactory, StudyFactory
from tests.fixtures.withings import CALLBACK

pytestmark = pytest.mark.django_db

SPANISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "es-MX,es;q=0.9,en;q=0.5"}
PHONE = "+34612345678"
ENGLISH = {
    "title": "Home blood pressure study",
    "body": "You will measure at home.\n\nYou can stop at any time.",
    "statements": "I agree to take part.\nI agree that my readings are sent to the study.",
}
SPANISH = {
    "title": "Estudio de presión arterial en casa",
    "body": "Se medirá la presión en casa.\n\nPuede dejarlo cuando quiera.",
    "statements": "Acepto participar.\nAcepto que mis mediciones se envíen al estudio.",
}
#: What a Spanish reader is shown, written out by hand: what the record must hash.
SPANISH_SHOWN = (
    "Estudio de presión arterial en casa\n\nVersión 1\n\nSe medirá la presión en casa.\n\n"
    "Puede dejarlo cuando quiera.\n\nAcepto participar.\n\nAcepto que mis mediciones se envíen al estudio."
)


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


@pytest.fixture
def bilingual_study():
    study = StudyFactory(
        slug="salud", name="Salud", enrollment_mode=Study.EnrollmentMode.OPEN, languages="en, es"
    )
    document = ConsentDocumentFactory(study=study, version=1, **ENGLISH)
    enrollment.consent_text_add(actor=None, document=document, language="es", **SPANISH)
    return study, document


def test_a_spanish_speaker_enrolls_consents_links_and_gets_a_spanish_reminder(
    client, bilingual_study, sms_gateway, sandbox, django_capture_on_commit_callbacks
):
    study, _document = bilingual_study
    client.defaults.update(SPANISH_BROWSER)

    page = client.get(reverse("enroll_open", args=[study.slug]))
    assert (page.status_code, html_lang(page), page["Content-Language"]) == (200, "es", "es")
    assert "¿Puede participar?" in page.content.decode()
    assert client.post(reverse("enroll_open", args=[study.slug]), {"start": "1"}).status_code == 302

    page = client.get(reverse("enroll_consent"))
    html = page.content.decode()
    assert html_lang(page) == "es"
    assert "<h1>Estudio de presión arterial en casa</h1>" in html
    assert "Versión 1" in html
    assert "Acepto y firmo" in html
    assert "Home blood pressure study" not in html
    digest = hashlib.sha256(SPANISH_SHOWN.encode()).hexdigest()
    data = {
        "text_sha256": digest, "signature": "Rosa Pérez", "keep_data": "keep", "agree_0": "on",
        "agree_1": "on", "email": "", "phone": PHONE, "preferred_channel": "sms", "language": "es",
        "reminders_opt_in": "on",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("enroll_consent"), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    participant = Participant.objects.get(study=study)
    record = ConsentRecord.objects.get(participant=participant)
    assert (participant.language, record.language, record.version) == ("es", "es", 1)
    assert record.rendered_text == SPANISH_SHOWN
    assert record.text_sha256 == digest
    consented = AuditEvent.objects.get(action="participant.consented", participant=participant)
    assert (consented.detail["language"], consented.detail["sha256"]) == ("es", digest)
    [link_text] = sms_gateway.state.texts(PHONE)
    assert link_text.body.startswith("Salud: su página privada del estudio es ")

    # Linking: the connect step, Withings' consent (the sandbox), back to the portal in Spanish.
    to_withings = client.get(reverse("withings_connect"))
    assert to_withings.status_code == 302
    at_withings = requests.get(to_withings["Location"], allow_redirects=False, timeout=5)
    assert at_withings.status_code == 302, (to_withings["Location"], at_withings.text)
    back = {k: v[0] for k, v in parse_qs(urlsplit(at_withings.headers["Location"]).query).items()}
    assert at_withings.headers["Location"].startswith(CALLBACK)
    callback = client.get(reverse("withings_callback"), back)
    assert callback["Location"] == reverse("withings_connected")
    connected = client.get(callback["Location"])
    assert html_lang(connected) == "es"
    assert "Ya está conectado/a" in connected.content.decode()
    participant.refresh_from_db()
    assert participant.link_status == Participant.LinkStatus.ACTIVE

    # A reminder to take the readings goes out in Spanish.
    now = timezone.now()
    message = services.message_queue(
        participant=participant,
        reason=Reason.PROMPT,
        dedupe_key="prompt:test",
        context={"window": "morning", "window_start": "07:00", "window_end": "10:00"},
        due_at=now,
    )
    dispatch.send_message(message.pk, now=now)
    reminder = sms_gateway.state.texts(PHONE)[-1]
    assert reminder.body == "Salud: es hora de tomarse la presión arterial (07:00-10:00)."

    # The private page speaks Spanish too, in a fresh browser that asks for English.
    token = client.session["participant_status_token"]
    other = client.__class__(HTTP_ACCEPT_LANGUAGE="en")
    status = other.get(reverse("participant_status", args=[token]))
    assert html_lang(status) == "es"
    assert "Su participación" in status.content.decode()


def test_the_browser_language_is_the_default_and_a_choice_sticks_for_the_session(client, bilingual_study):
    study, _document = bilingual_study
    url = reverse("enroll_open", args=[study.slug])
    assert html_lang(client.get(url, HTTP_ACCEPT_LANGUAGE="es")) == "es"
    assert html_lang(client.get(url, HTTP_ACCEPT_LANGUAGE="de")) == "en"  # not offered: English
    page = client.get(url + "?lang=en", HTTP_ACCEPT_LANGUAGE="es")
    assert html_lang(page) == "en"
    assert "Can you take part?" in page.content.decode()
    assert html_lang(client.get(url, HTTP_ACCEPT_LANGUAGE="es")) == "en"  # the choice is kept
    # The language menu offers the study's languages, each marked with its own language.
    html = client.get(url + "?lang=es").content.decode()
    assert '<a href="?lang=en" lang="en" hreflang="en">English</a>' in html
    assert 'lang="es" hreflang="es" aria-current="true">Español</a>' in html
    assert "Français" not in html  # the study does not enroll in French


def test_a_language_the_study_does_not_enroll_in_falls_back_to_its_first(client):
    study = StudyFactory(slug="solo", enrollment_mode=Study.EnrollmentMode.OPEN, languages="en")
    ConsentDocumentFactory(study=study, version=1, **ENGLISH)
    page = client.get(reverse("enroll_open", args=[study.slug]), **SPANISH_BROWSER)
    assert html_lang(page) == "en"
    client.post(reverse("enroll_open", args=[study.slug]), {"start": "1"})
    consent = client.get(reverse("enroll_consent"), **SPANISH_BROWSER)
    assert html_lang(consent) == "en"
    assert "<h1>Home blood pressure study</h1>" in consent.content.decode()


def test_the_staff_admin_stays_english_for_a_spanish_browser(client):
    page = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="es")
    assert page.status_code == 200
    assert page.wsgi_request.LANGUAGE_CODE == "en"
    assert "Content-Language" not in page  # only participant pages announce a language
    admin = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE="fr")
    assert admin.wsgi_request.LANGUAGE_CODE == "en"


def test_the_participant_changes_their_language_on_the_private_page(client, bilingual_study):
    study, document = bilingual_study
    participant = Participant.objects.create(study=study, code="SA-AAAAAA", language="es")
    outcome = enrollment.participant_give_consent(
        participant=participant, document=document,
        shown_text_sha256=hashlib.sha256(enrollment.render_consent_text(document, "en").encode()).hexdigest(),
        signature="Rosa", keep_data_on_withdrawal=True, language="es",
        contact=enrollment.ContactDetails(phone=PHONE, language="es"),
    )  # fmt: skip
    token = outcome.status_token
    assert outcome.record.language == "en"  # the consent was shown in English, as recorded
    response = client.post(reverse("participant_language", args=[token]), {"language": "en"})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.language == "en"
    assert ParticipantContact.objects.get(participant=participant).language == "en"
    event = AuditEvent.objects.get(action="participant.language_changed", participant=participant)
    assert event.detail == {"from": "es", "to": "en"}
    assert html_lang(client.get(reverse("participant_status", args=[token]))) == "en"

    # An unknown language changes nothing and records nothing.
    client.post(reverse("participant_language", args=[token]), {"language": "xx"})
    participant.refresh_from_db()
    assert participant.language == "en"
    assert AuditEvent.objects.filter(action="participant.language_changed").count() == 1


def test_a_study_cannot_open_enrollment_in_a_language_its_current_consent_lacks():
    study = StudyFactory(status=Study.Status.ACTIVE, languages="en, fr")
    document = ConsentDocumentFactory(study=study, version=1, **ENGLISH)
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert "Enrollment cannot open in Français" in str(refused.value.message_dict["languages"])

    enrollment.consent_text_add(
        actor=None, document=document, language="fr", title="Étude", body="Texte.",
        statements="J’accepte de participer.\nJ’accepte l’envoi de mes mesures.",
    )  # fmt: skip
    study.full_clean()  # now it may

    # A new version without the French text closes French again until it is translated.
    enrollment.consent_document_publish(actor=None, study=study, **ENGLISH)
    with pytest.raises(ValidationError):
        study.full_clean()
    # A draft study may be prepared in any order; an unknown code is refused.
    study.status = Study.Status.DRAFT
    study.full_clean()
    study.languages = "en, de"
    with pytest.raises(ValidationError):
        study.full_clean()


def test_a_translation_with_other_statements_is_refused_and_nothing_is_saved(bilingual_study):
    _study, document = bilingual_study
    with pytest.raises(ValidationError) as refused:
        enrollment.consent_text_add(
            actor=None, document=document, language="fr", title="Étude", body="Texte.",
            statements="J’accepte tout.",
        )  # fmt: skip
    assert "has 2 statements" in str(refused.value)
    assert not ConsentText.objects.filter(language="fr").exists()
    assert not AuditEvent.objects.filter(action="consent.translation_added", target="v1/fr").exists()


def test_reading_dates_follow_the_participants_language():
    from django.template import Context, Template
    from django.utils import translation

    at = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)
    template = Template(
        '{% load i18n %}{% translate "l j F, H:i" context "date and time of a reading (PHP-style date '
        'format)" as f %}{{ at|date:f }}'
    )
    shown = {}
    for code in ("en", "es", "fr"):
        with translation.override(code):
            shown[code] = template.render(Context({"at": at}))
    assert shown == {
        "en": "Tuesday 1 December, 14:30",
        "es": "martes 1 de diciembre, 14:30",
        "fr": "mardi 1 décembre, 14:30",
    }
