"""Delivery receipts whatever their order, and SMS bounces: the SMS sandbox posts its signed status
callbacks to the portal's live server — after answering the send, or before it (Twilio can call back
before the portal has read the answer holding the MessageSid). The final status is right either way;
a text to an unreachable, unknown or landline number bounces and counts against the number."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cohorts.models import ParticipantContact
from messaging import dispatch, receipts, services
from messaging.models import Message, PendingReceipt, Reason
from messaging.sandbox import twilio_signature
from tests.factories import ParticipantFactory
from tests.fixtures.messaging import AUTH_TOKEN, give_contact

PHONE = "+33612345678"
STATUS = "/messaging/twilio/status/"


def send_one(participant, key="one_off:1"):
    message = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key=key)
    outcome = dispatch.send_message(message.pk)
    return message, outcome


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("receipts_first", [False, True], ids=["after-answer", "before-answer"])
def test_the_delivered_receipt_lands_whatever_the_order(sms_gateway_live, receipts_first):
    sms_gateway_live.state.receipts_first = receipts_first
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)

    message, outcome = send_one(participant)
    sms_gateway_live.state.wait_idle()

    assert outcome == Message.Status.SENT
    [text] = sms_gateway_live.state.texts(PHONE)
    # Both callbacks reached the portal and were accepted…
    assert [(c["MessageStatus"], c["answer"]) for c in sms_gateway_live.state.callbacks] == [
        ("sent", "204"),
        ("delivered", "204"),
    ]
    message.refresh_from_db()
    # …and the final status is the receipt's, none left waiting.
    assert (message.provider_id, message.status) == (text.sid, Message.Status.DELIVERED)
    assert message.delivered_at is not None
    assert not PendingReceipt.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("receipts_first", [False, True], ids=["after-answer", "before-answer"])
def test_an_unreachable_handset_bounces_and_counts_against_the_number(
    sms_gateway_live, receipts_first, settings
):
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    sms_gateway_live.state.receipts_first = receipts_first
    sms_gateway_live.state.undeliverable.add(PHONE)  # the sandbox answers "undelivered", 30003
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)

    message, _ = send_one(participant)
    sms_gateway_live.state.wait_idle()

    message.refresh_from_db()
    assert (message.status, message.error) == (
        Message.Status.BOUNCED,
        "Bounced: unreachable handset (Twilio 30003)",
    )
    contact.refresh_from_db()
    assert contact.sms_failures == 1  # counted, not yet flagged (a phone may be off)
    assert not PendingReceipt.objects.exists()


def post_status(client, params):
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, "http://testserver" + STATUS, params)}
    return client.post(STATUS, params, headers=headers)


@pytest.fixture
def signed(settings):
    settings.PORTAL_BASE_URL = "http://testserver"
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.SMS_BACKEND = "console"
    settings.MESSAGING_SMS_PER_SECOND = 1000.0
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "error", "failures"),
    [
        ("30005", "Bounced: unknown number (Twilio 30005)", 3),  # flagged at once: 3 = the limit
        ("30006", "Bounced: landline (Twilio 30006)", 3),
        ("30003", "Bounced: unreachable handset (Twilio 30003)", 1),
        ("30007", "Not delivered (Twilio 30007)", 1),  # carrier filtering: a failure, not a bounce
    ],
)
def test_permanent_sms_failures_bounce_and_flag_unusable_numbers(client, signed, code, error, failures):
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)
    message, _ = send_one(participant)
    message.refresh_from_db()

    params = {"MessageSid": message.provider_id, "MessageStatus": "undelivered", "ErrorCode": code}
    assert post_status(client, params).status_code == 204

    message.refresh_from_db()
    status = Message.Status.FAILED if code == "30007" else Message.Status.BOUNCED
    assert (message.status, message.error) == (status, error)
    contact.refresh_from_db()
    assert contact.sms_failures == failures
    # A repeated callback changes nothing more.
    post_status(client, params)
    contact.refresh_from_db()
    assert contact.sms_failures == failures


@pytest.mark.django_db
def test_a_receipt_for_an_unknown_sid_waits_then_is_dropped_after_a_day(client, signed):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    other, _ = send_one(participant)
    other.refresh_from_db()
    sid = "SM" + "f" * 32

    assert post_status(client, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 204

    [pending] = PendingReceipt.objects.all()
    assert (pending.provider_id, pending.provider_status) == (sid, "delivered")
    other.refresh_from_db()
    assert other.status == Message.Status.SENT  # nothing else touched
    dispatch.dispatch_due()
    assert PendingReceipt.objects.count() == 1  # kept: the send may still record it
    PendingReceipt.objects.update(received_at=timezone.now() - dt.timedelta(days=1, minutes=1))
    dispatch.dispatch_due()
    assert not PendingReceipt.objects.exists()


@pytest.mark.django_db
def test_a_kept_receipt_is_applied_when_the_sid_is_recorded(signed):
    """The two sides of the race, step by step: the receipt first, then the sid."""
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    message = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key="k")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)
    sid = "SM" + "e" * 32

    receipts.receipt_receive(sid, "sent")
    receipts.receipt_receive(sid, "undelivered", "30005")
    assert PendingReceipt.objects.filter(provider_id=sid).count() == 1  # "sent" alone says nothing new
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING

    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENT, provider_id=sid)
    assert receipts.pending_apply(sid) == 1

    message.refresh_from_db()
    assert message.status == Message.Status.BOUNCED
    assert ParticipantContact.objects.get(participant=participant).sms_failures == 3
    assert not PendingReceipt.objects.exists()
