"""SMS through Twilio's Messages API, spoken by the SMS sandbox over real HTTP: what is sent, the
provider's answers (unsubscribed, invalid number, unreachable) and exactly-once sending."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from django.db import connection

from cohorts import hooks
from cohorts.models import AuditEvent, Participant, ParticipantContact
from messaging import dispatch, services
from messaging.models import Message, Reason
from tests.factories import ParticipantFactory, StudyFactory
from tests.fixtures.messaging import AUTH_TOKEN, FROM_NUMBER, give_contact

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"


def queue(participant, reason=Reason.ONE_OFF, key="one-off:1", **kwargs):
    return services.message_queue(participant=participant, reason=reason, dedupe_key=key, **kwargs)


def test_a_text_goes_to_the_gateway_in_twilios_wire_format(sms_gateway):
    study = StudyFactory(name="Home BP", contact_phone="+33 1 23 45 67 89")
    participant = ParticipantFactory(study=study)
    give_contact(participant, phone=PHONE)
    message = queue(participant)

    assert dispatch.dispatch_due() == 1

    [text] = sms_gateway.state.texts(PHONE)
    assert text.direction == "outbound-api"
    assert text.body == "Home BP: a message from the study team. Questions: +33 1 23 45 67 89"
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider_id == text.sid
    assert message.sent_at is not None


def test_wrong_credentials_fail_the_message_without_retrying(sms_gateway, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.FAILED
    message.refresh_from_db()
    assert message.error == "Twilio 20003"
    assert sms_gateway.state.texts() == []


def test_an_invalid_number_fails_and_is_flagged_at_once(sms_gateway, settings):
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    participant = ParticipantFactory()
    contact = give_contact(participant, phone="+15005550001")  # Twilio's magic "invalid" number
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.FAILED

    message.refresh_from_db()
    assert message.error == "Twilio 21211"
    contact.refresh_from_db()
    assert contact.sms_failures == 3
    assert sms_gateway.state.texts() == []


def test_a_number_that_replied_stop_at_the_carrier_is_opted_out(sms_gateway):
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)
    sms_gateway.state.reply(PHONE, "STOP")  # the gateway blocks the number (no portal listening)
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.OPTED_OUT

    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    assert AuditEvent.objects.filter(action="contact.sms_opted_out", participant=participant).count() == 1
    assert [t.direction for t in sms_gateway.state.texts(PHONE)] == ["inbound"]


def test_an_unreachable_gateway_is_retried_with_bounds(sms_gateway, settings):
    settings.TWILIO_API_URL = "http://127.0.0.1:9"
    settings.MESSAGING_MAX_ATTEMPTS = 3
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE)
    message = queue(participant)

    outcomes = []
    for _ in range(3):
        message.refresh_from_db()
        outcomes.append(dispatch.send_message(message.pk, now=message.due_at))

    assert outcomes == [Message.Status.QUEUED, Message.Status.QUEUED, Message.Status.FAILED]
    message.refresh_from_db()
    assert message.attempts == 3
    assert message.error == "Gave up after 3 attempts: SMS gateway unreachable (ConnectionError)"
    contact.refresh_from_db()
    assert contact.sms_failures == 1


@pytest.mark.parametrize(
    ("setup", "reason", "error"),
    [
        ("withdrawn", Reason.ONE_OFF, "The participant has withdrawn."),
        ("stopped", Reason.ONE_OFF, "Replied STOP to texts."),
        ("no_opt_in", Reason.NO_DATA, "Did not opt in to reminders."),
    ],
)
def test_send_time_checks_leave_a_message_opted_out_and_send_nothing(sms_gateway, setup, reason, error):
    participant = ParticipantFactory()
    contact = give_contact(participant, phone=PHONE, opt_in=setup != "no_opt_in")
    message = queue(participant, reason=reason, key=f"{reason}:1", context={"days": 2})
    if setup == "withdrawn":
        Participant.objects.filter(pk=participant.pk).update(status=Participant.Status.WITHDRAWN)
    elif setup == "stopped":
        ParticipantContact.objects.filter(pk=contact.pk).update(sms_opted_out_at=message.created_at)

    assert dispatch.dispatch_due() == 0

    message.refresh_from_db()
    assert (message.status, message.error) == (Message.Status.OPTED_OUT, error)
    assert sms_gateway.state.texts() == []


def test_a_message_is_not_sent_before_it_is_due(sms_gateway):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    from django.utils import timezone

    message = queue(participant, due_at=timezone.now() + timezone.timedelta(hours=1))
    assert dispatch.dispatch_due() == 0
    assert dispatch.dispatch_due(now=message.due_at) == 1
    assert len(sms_gateway.state.texts()) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_every_message_exactly_once(sms_gateway):
    study = StudyFactory()
    participants = [ParticipantFactory(study=study) for _ in range(12)]
    for index, participant in enumerate(participants):
        give_contact(participant, phone=f"+3361234{index:04d}")
        queue(participant)
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def worker():
        try:
            barrier.wait()
            counts.append(dispatch.dispatch_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 12
    assert len(sms_gateway.state.texts()) == 12
    assert len({t.number for t in sms_gateway.state.texts()}) == 12
    assert set(Message.objects.values_list("status", "attempts")) == {(Message.Status.SENT, 1)}


def test_sending_logs_neither_the_number_nor_the_address(sms_gateway, caplog, smtp_server):
    caplog.set_level(logging.DEBUG)
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE, email="sam.sample@example.net")
    queue(participant, key="one-off:sms")
    ParticipantContact.objects.filter(participant=participant).update(preferred_channel="email")
    queue(participant, key="one-off:email")
    settings_console = ParticipantFactory()
    give_contact(settings_console, phone="+33698765432")
    queue(settings_console)

    dispatch.dispatch_due()

    assert Message.objects.filter(status=Message.Status.SENT).count() == 3
    portal_records = [r for r in caplog.records if not r.name.startswith("mail.log")]  # the test's server
    assert any(r.name.startswith("urllib3") for r in portal_records)  # the HTTP client did log, at DEBUG
    logged = "\n".join(record.getMessage() for record in portal_records)
    for secret in (PHONE, "+33698765432", "sam.sample@example.net", FROM_NUMBER, "33612345678", AUTH_TOKEN):
        assert secret not in logged


def test_the_console_backend_prints_the_text_but_never_the_number(settings, caplog):
    settings.SMS_BACKEND = "console"
    settings.MESSAGING_SMS_PER_SECOND = 1000.0
    caplog.set_level(logging.INFO, logger="messaging")
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.SENT

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "a message from the study team" in logged
    assert PHONE not in logged
    assert "612345678" not in logged


def test_the_console_backend_logs_a_staff_escalation_text_as_a_staff_text(settings, caplog):
    """Staff texts go through the `staff_sms_senders` hook (safety escalations): logged as a text to a
    staff member — not as "participant 0" — with neither the number nor the text."""
    settings.SMS_BACKEND = "console"
    caplog.set_level(logging.INFO, logger="messaging")
    staff_phone = "+447700900456"
    text = "Alpha BP: safety alert for participant A-001 not acknowledged - now with you."
    [sender] = hooks.staff_sms_senders

    provider_id = sender(staff_phone, text)

    [record] = [r for r in caplog.records if r.name == "messaging.channels"]
    logged = record.getMessage()
    assert provider_id.startswith("console-")
    assert logged == (
        f"SMS (console backend) {provider_id} to a staff member (safety escalation, {len(text)} characters; "
        "number and text not logged)"
    )
    assert "participant" not in logged  # neither "participant 0" nor the text's participant code
    for secret in (staff_phone, "7700900456", "A-001", "Alpha BP"):
        assert secret not in logged


@pytest.mark.parametrize(
    "line",
    [
        '"GET /sms-sandbox/?number=%2B33612345678 HTTP/1.1" 200',
        "POST form To=+33612345678&Body=hi",
        "unsubscribe at /messaging/unsubscribe/42:abcdef/ now",
    ],
)
def test_the_log_filter_masks_numbers_and_unsubscribe_links(line):
    from config.redaction import MARK, redact

    masked = redact(line)
    assert MARK in masked
    assert "33612345678" not in masked
    assert "abcdef" not in masked


def test_the_log_filter_leaves_times_and_offsets_alone():
    from config.redaction import redact

    line = "2026-03-29 02:30:00+0100 sent 12345678 readings in 3.5 s"
    assert redact(line) == line


def test_an_unconfigured_twilio_backend_fails_the_message_saying_what_is_missing(settings):
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ""
    settings.MESSAGING_SMS_PER_SECOND = 1000.0
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    message = queue(participant)

    assert dispatch.send_message(message.pk) == Message.Status.FAILED
    message.refresh_from_db()
    assert message.error.startswith("SMS not configured: set TWILIO_ACCOUNT_SID")


def test_a_send_interrupted_mid_way_is_failed_not_resent(sms_gateway):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    message = queue(participant)
    stale = message.created_at - dt.timedelta(minutes=11)
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING, attempts=1, status_changed_at=stale
    )

    assert dispatch.dispatch_due() == 0

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error == "Interrupted while sending: delivery unknown, not resent."
    assert sms_gateway.state.texts() == []
