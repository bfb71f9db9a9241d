"""E-mail through Django's SMTP backend to a real SMTP server (aiosmtpd), with RFC 8058 one-click
unsubscribe that stops every later e-mail."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from cohorts.models import AuditEvent, ParticipantContact
from messaging import dispatch, services
from messaging.channels import unsubscribe_token
from messaging.models import Message, Reason
from tests.factories import ParticipantFactory, StudyFactory
from tests.fixtures.messaging import give_contact

pytestmark = pytest.mark.django_db

ADDRESS = "sam.sample@example.net"


def queue(participant, reason=Reason.ONE_OFF, key="one-off:1"):
    return services.message_queue(participant=participant, reason=reason, dedupe_key=key)


def test_an_email_reaches_the_smtp_server_with_one_click_unsubscribe_headers(smtp_server, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    study = StudyFactory(name="Home BP", contact_email="team@example.org")
    participant = ParticipantFactory(study=study)
    give_contact(participant, email=ADDRESS)
    message = services.message_queue(
        participant=participant,
        reason=Reason.STATUS_LINK,
        dedupe_key="status_link:x",
        context={"link": "https://portal.example.org/p/secret-token/"},
    )

    assert dispatch.dispatch_due() == 1

    [received] = smtp_server.received
    assert smtp_server.envelopes[0].rcpt_tos == [ADDRESS]
    assert received["To"] == ADDRESS
    assert received["Subject"] == "Home BP: your private study page"
    link = f"https://portal.example.org/messaging/unsubscribe/{unsubscribe_token(participant.pk)}/"
    assert received["List-Unsubscribe"].strip() == f"<{link}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = received.get_content()
    assert "https://portal.example.org/p/secret-token/" in body
    assert link in body
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 1
    assert message.provider_id == received["Message-ID"].strip("<>")


def test_one_click_post_unsubscribes_without_csrf_or_login_and_nothing_more_is_sent(smtp_server):
    participant = ParticipantFactory()
    give_contact(participant, email=ADDRESS)
    queue(participant, key="one-off:1")
    dispatch.dispatch_due()
    [first] = smtp_server.received
    path = re.search(r"<https?://[^/]+(/messaging/unsubscribe/[^>]+)>", first["List-Unsubscribe"]).group(1)

    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    contact = ParticipantContact.objects.get(participant=participant)
    assert contact.email_opted_out_at is not None
    audit = AuditEvent.objects.get(action="contact.email_opted_out")
    assert audit.participant_id == participant.pk
    assert ADDRESS not in str(audit.detail)
    later = queue(participant, key="one-off:2")
    assert dispatch.dispatch_due() == 0
    later.refresh_from_db()
    assert later.status == Message.Status.OPTED_OUT
    assert later.attempts == 1
    assert len(smtp_server.received) == 1  # nothing more reached the server


def test_get_shows_a_confirmation_button_and_changes_nothing(client):
    participant = ParticipantFactory()
    give_contact(participant, email=ADDRESS)
    path = f"/messaging/unsubscribe/{unsubscribe_token(participant.pk)}/"

    response = client.get(path)

    assert response.status_code == 200
    assert b'<button type="submit">Unsubscribe</button>' in response.content
    assert ParticipantContact.objects.get(participant=participant).email_opted_out_at is None
    assert not AuditEvent.objects.filter(action="contact.email_opted_out").exists()


def test_a_forged_or_altered_unsubscribe_link_changes_nothing(client):
    participant = ParticipantFactory()
    give_contact(participant, email=ADDRESS)
    token = unsubscribe_token(participant.pk)
    for bad in (token[:-2] + "xx", "123", f"{participant.pk}"):
        assert client.post(f"/messaging/unsubscribe/{bad}/").status_code == 404
    assert ParticipantContact.objects.get(participant=participant).email_opted_out_at is None
    assert not AuditEvent.objects.filter(action="contact.email_opted_out").exists()


def test_a_refused_recipient_bounces_and_counts_against_the_address(smtp_server, settings):
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    smtp_server.refuse.add(ADDRESS)
    participant = ParticipantFactory()
    give_contact(participant, email=ADDRESS)
    message = queue(participant)

    dispatch.dispatch_due()

    message.refresh_from_db()
    assert message.status == Message.Status.BOUNCED
    assert message.error == "SMTP recipient refused (550)"
    assert ADDRESS not in message.error
    assert ParticipantContact.objects.get(participant=participant).email_failures == 3  # flagged at once
    assert smtp_server.received == []


def test_an_unreachable_smtp_server_is_retried_later_then_failed(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    settings.MESSAGING_MAX_ATTEMPTS = 2
    participant = ParticipantFactory()
    give_contact(participant, email=ADDRESS)
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.QUEUED
    message.refresh_from_db()
    assert (message.attempts, message.error) == (1, "SMTP unavailable (ConnectionRefusedError)")
    assert dispatch.dispatch_due() == 0  # not due again yet: the retry waits
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED

    assert dispatch.send_message(message.pk, now=message.due_at) == Message.Status.FAILED
    message.refresh_from_db()
    assert message.attempts == 2
    assert message.error.startswith("Gave up after 2 attempts")
    assert ParticipantContact.objects.get(participant=participant).email_failures == 1


def test_a_spanish_speakers_email_is_in_spanish_footer_and_unsubscribe_page_included(smtp_server, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    study = StudyFactory(name="Salud", contact_email="equipo@example.org")
    participant = ParticipantFactory(study=study)
    give_contact(participant, email=ADDRESS)
    contact = ParticipantContact.objects.get(participant=participant)
    contact.language = "es"
    contact.save(update_fields=["language"])
    participant.language = "es"
    participant.save(update_fields=["language"])
    services.message_queue(
        participant=participant, reason=Reason.STATUS_LINK, dedupe_key="status_link:es",
        context={"link": "https://portal.example.org/p/secret-token/"},
    )  # fmt: skip

    assert dispatch.dispatch_due() == 1

    [received] = smtp_server.received
    assert received["Subject"] == "Salud: su página privada del estudio"
    body = received.get_content().replace("\r\n", "\n")
    assert body.startswith("Hola:\n\nGracias por participar en Salud.")
    token = unsubscribe_token(participant.pk)
    link = f"https://portal.example.org/messaging/unsubscribe/{token}/"
    assert f"--\nPara no recibir más correos del estudio: {link}\n" in body
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/messaging/unsubscribe/{token}/")
    assert '<html lang="es">' in page.content.decode()
    assert "¿Quiere dejar de recibir correos del estudio?" in page.content.decode()
