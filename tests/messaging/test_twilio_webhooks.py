"""Twilio's webhooks: X-Twilio-Signature checked (403 and nothing changed without a valid one),
delivery statuses, and inbound STOP / START / HELP obeyed and audited."""

from __future__ import annotations

import pytest

from cohorts.models import AuditEvent, ParticipantContact
from messaging import dispatch, services
from messaging.models import InboundMessage, Message, Reason
from messaging.sandbox import twilio_signature
from tests.factories import ParticipantFactory, StudyFactory
from tests.fixtures.messaging import AUTH_TOKEN, give_contact

pytestmark = pytest.mark.django_db

PORTAL = "http://testserver"
PHONE = "+33612345678"
STATUS = "/messaging/twilio/status/"
INBOUND = "/messaging/twilio/inbound/"


@pytest.fixture(autouse=True)
def _twilio(settings):
    settings.PORTAL_BASE_URL = PORTAL
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.SMS_BACKEND = "console"
    settings.MESSAGING_SMS_PER_SECOND = 1000.0


def post(client, path, params, signature=None):
    headers = {}
    if signature is None:
        headers["X-Twilio-Signature"] = twilio_signature(AUTH_TOKEN, PORTAL + path, params)
    elif signature is not False:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, params, headers=headers)


def sent_message(participant, key="one-off:1"):
    message = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key=key)
    dispatch.send_message(message.pk)
    message.refresh_from_db()
    return message


def inbound(body, sid="SM" + "1" * 32, number=PHONE):
    return {"MessageSid": sid, "From": number, "To": "+15005550006", "Body": body, "AccountSid": "AC1"}


@pytest.mark.parametrize("signature", [False, "", "bm90IHRoZSBzaWduYXR1cmU=", "wrong-key"])
def test_unsigned_or_badly_signed_webhooks_are_refused_and_change_nothing(client, signature):
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)
    message = sent_message(participant)
    audits = AuditEvent.objects.count()
    status_params = {"MessageSid": message.provider_id, "MessageStatus": "delivered"}
    if signature == "wrong-key":
        bad_status = twilio_signature("another-token", PORTAL + STATUS, status_params)
        bad_inbound = twilio_signature("another-token", PORTAL + INBOUND, inbound("STOP"))
    else:
        bad_status = bad_inbound = signature

    assert post(client, STATUS, status_params, bad_status).status_code == 403
    assert post(client, INBOUND, inbound("STOP"), bad_inbound).status_code == 403

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None
    assert not InboundMessage.objects.exists()
    assert AuditEvent.objects.count() == audits


def test_a_signature_over_other_fields_is_refused(client):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    signed_for_help = twilio_signature(AUTH_TOKEN, PORTAL + INBOUND, inbound("HELP"))
    assert post(client, INBOUND, inbound("STOP"), signed_for_help).status_code == 403
    assert not InboundMessage.objects.exists()


def test_delivery_statuses_move_forward_only_and_failures_count(client):
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)
    ParticipantContact.objects.filter(pk=contact.pk).update(sms_failures=2)
    message = sent_message(participant)

    assert (
        post(client, STATUS, {"MessageSid": message.provider_id, "MessageStatus": "delivered"}).status_code
        == 204
    )
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert message.delivered_at is not None
    contact.refresh_from_db()
    assert contact.sms_failures == 0  # the number works
    # A late "sent" callback does not move a delivered message back.
    post(client, STATUS, {"MessageSid": message.provider_id, "MessageStatus": "sent"})
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED

    other = sent_message(participant, key="one-off:2")
    params = {"MessageSid": other.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30007"}
    assert post(client, STATUS, params).status_code == 204
    other.refresh_from_db()
    assert (other.status, other.error) == (Message.Status.FAILED, "Not delivered (Twilio 30007)")
    contact.refresh_from_db()
    assert contact.sms_failures == 1


def test_stop_opts_out_with_one_confirmation_and_start_opts_back_in(client):
    study = StudyFactory(name="Home BP")
    participant = ParticipantFactory(study=study)
    contact = give_contact(participant, phone=PHONE)

    response = post(client, INBOUND, inbound("Stop", sid="SM" + "a" * 32))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Home BP: you will get no more texts. '
        "Reply START to receive them again.</Message></Response>"
    )
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    stored = InboundMessage.objects.get()
    assert (stored.participant_id, stored.study_id, stored.keyword, stored.body) == (
        participant.pk,
        study.pk,
        "STOP",
        "Stop",
    )
    assert AuditEvent.objects.filter(action="contact.sms_opted_out", participant=participant).count() == 1
    reply = Message.objects.get(reason=Reason.OPT_OUT)
    assert reply.status == Message.Status.SENT

    # Twilio retries the same webhook: handled once.
    again = post(client, INBOUND, inbound("Stop", sid="SM" + "a" * 32))
    assert b"<Message>" not in again.content
    assert InboundMessage.objects.count() == 1

    # Nothing is sent any more.
    later = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key="one-off:9")
    assert dispatch.send_message(later.pk) == Message.Status.OPTED_OUT

    response = post(client, INBOUND, inbound("START", sid="SM" + "b" * 32))
    assert b"texts are on again" in response.content
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None
    assert AuditEvent.objects.filter(action="contact.sms_opted_in", participant=participant).count() == 1


def test_help_answers_with_the_study_contact(client):
    study = StudyFactory(name="Home BP", contact_phone="+33 1 23 45 67 89", contact_email="team@example.org")
    participant = ParticipantFactory(study=study)
    give_contact(participant, phone=PHONE)

    response = post(client, INBOUND, inbound("help"))

    assert b"+33 1 23 45 67 89 / team@example.org" in response.content
    assert InboundMessage.objects.get().keyword == "HELP"
    contact = ParticipantContact.objects.get(participant=participant)
    assert contact.sms_opted_out_at is None


def test_a_text_from_an_unknown_number_is_stored_without_participant_and_unanswered(client):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)

    response = post(client, INBOUND, inbound("STOP", number="+33698765432"))

    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    stored = InboundMessage.objects.get()
    assert (stored.participant_id, stored.study_id, stored.keyword) == (None, None, "STOP")
    assert ParticipantContact.objects.get(participant=participant).sms_opted_out_at is None
    assert not Message.objects.filter(reason=Reason.OPT_OUT).exists()


def test_free_text_is_kept_for_the_coordinators_without_an_answer(client):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)

    response = post(client, INBOUND, inbound("My cuff shows E2, what should I do?"))

    assert b"<Message>" not in response.content
    stored = InboundMessage.objects.get()
    assert (stored.participant_id, stored.keyword) == (participant.pk, "")
    assert stored.body == "My cuff shows E2, what should I do?"
    assert AuditEvent.objects.filter(action="message.received", participant=participant).exists()
