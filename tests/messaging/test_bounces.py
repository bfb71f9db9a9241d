"""E-mail bounces from delivery status notifications (RFC 3464) in a mailbox: an e-mail goes to a
real SMTP server, the mail server later returns a DSN for it (Postfix's wording and layout, with the
returned message or only its headers); `manage.py messaging_bounces` marks it bounced, counts it
against the address (a bad mailbox flags it at once), ignores delays, and is safe to run twice."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from cohorts.models import ParticipantContact
from messaging import dispatch, services
from messaging.models import Message, Reason
from tests.factories import ParticipantFactory
from tests.fixtures.messaging import give_contact

pytestmark = pytest.mark.django_db

ADDRESS = "sam.sample@example.net"

# A DSN as Postfix writes it (bounce(8)): human part, delivery-status, the returned message.
POSTFIX_DSN = """\
From MAILER-DAEMON Wed Dec  2 05:01:13 2026
Return-Path: <>
Received: by mail.portal.example.org (Postfix) id 4F2A81C0A3B; Wed,  2 Dec 2026 05:01:13 +0000 (UTC)
Date: Wed,  2 Dec 2026 05:01:13 +0000 (UTC)
From: MAILER-DAEMON@mail.portal.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: portal@portal.example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F2A81C0A3B.1764651673/mail.portal.example.org"
Content-Transfer-Encoding: 8bit
Message-Id: <20261202050113.4F2A81C0A3B@mail.portal.example.org>

This is a MIME-encapsulated message.

--4F2A81C0A3B.1764651673/mail.portal.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.portal.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<{address}>: host mx.example.net[192.0.2.25] said: 550 5.1.1
    <{address}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4F2A81C0A3B.1764651673/mail.portal.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.portal.example.org
X-Postfix-Queue-ID: 4F2A81C0A3B
X-Postfix-Sender: rfc822; portal@portal.example.org
Arrival-Date: Wed,  2 Dec 2026 05:01:12 +0000 (UTC)

Final-Recipient: rfc822; {address}
Original-Recipient: rfc822;{address}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected: User
    unknown in virtual mailbox table

--4F2A81C0A3B.1764651673/mail.portal.example.org
Content-Description: {returned_description}
Content-Type: {returned_type}
Content-Transfer-Encoding: 8bit

{returned}
--4F2A81C0A3B.1764651673/mail.portal.example.org--
"""


def dsn(returned_headers: str, *, action="failed", status="5.1.1", headers_only=False) -> str:
    returned = returned_headers if headers_only else returned_headers + "\nYour readings...\n"
    return POSTFIX_DSN.format(
        address=ADDRESS,
        action=action,
        status=status,
        returned=returned,
        returned_type="text/rfc822-headers" if headers_only else "message/rfc822",
        returned_description="Undelivered Message Headers" if headers_only else "Undelivered Message",
    )


def sent_email(smtp_server, participant, key):
    message = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key=key)
    assert dispatch.send_message(message.pk) == Message.Status.SENT
    message.refresh_from_db()
    received = smtp_server.received[-1]
    headers = "".join(f"{name}: {value}\n" for name, value in received.items())
    return message, headers


def run(path) -> str:
    out = io.StringIO()
    call_command("messaging_bounces", str(path), stdout=out)
    return out.getvalue()


def test_a_dsn_in_a_mailbox_bounces_the_email_and_flags_a_bad_mailbox(smtp_server, settings, tmp_path):
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    participant = ParticipantFactory()
    contact = give_contact(participant, email=ADDRESS)
    bounced, headers = sent_email(smtp_server, participant, "one_off:1")
    delayed, delayed_headers = sent_email(smtp_server, participant, "one_off:2")
    fine, _ = sent_email(smtp_server, participant, "one_off:3")
    foreign = headers.replace(bounced.provider_id, "not-ours@elsewhere.example")
    mbox = tmp_path / "bounces.mbox"
    mbox.write_text(
        dsn(headers)
        + "\n"
        + dsn(delayed_headers, action="delayed", status="4.4.1")
        + "\n"
        + dsn(foreign)
        + "\n"
        + "From someone Wed Dec  2 05:02:00 2026\nSubject: out of office\n\nI am away.\n"
    )

    assert run(mbox) == "4 read: 1 bounced, 1 unmatched, 2 not a permanent failure\n"

    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {
        bounced.pk: Message.Status.BOUNCED,
        delayed.pk: Message.Status.SENT,
        fine.pk: Message.Status.SENT,
    }
    bounced.refresh_from_db()
    assert bounced.error == "Bounced (DSN 5.1.1)"
    assert ADDRESS not in bounced.error
    contact.refresh_from_db()
    assert contact.email_failures == 3  # a bad mailbox: flagged at once

    # The same mailbox again: nothing bounces twice, nothing counts twice.
    assert run(mbox) == "4 read: 0 bounced, 2 unmatched, 2 not a permanent failure\n"
    contact.refresh_from_db()
    assert contact.email_failures == 3


def test_a_dsn_returning_only_headers_from_stdin_counts_one_failure(smtp_server, settings, monkeypatch):
    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    participant = ParticipantFactory()
    contact = give_contact(participant, email=ADDRESS)
    message, headers = sent_email(smtp_server, participant, "one_off:1")
    raw = dsn(headers, status="5.2.2", headers_only=True).split("\n", 1)[1]  # no mbox "From " line
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw.encode())))

    assert run("-") == "1 read: 1 bounced, 0 unmatched, 0 not a permanent failure\n"

    message.refresh_from_db()
    assert (message.status, message.error) == (Message.Status.BOUNCED, "Bounced (DSN 5.2.2)")
    contact.refresh_from_db()
    assert contact.email_failures == 1  # a full mailbox counts, it does not flag at once
    # An accepted e-mail later does not wipe the count: acceptance is not delivery.
    sent_email(smtp_server, participant, "one_off:2")
    contact.refresh_from_db()
    assert contact.email_failures == 1


def test_a_missing_mailbox_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run(tmp_path / "nope.mbox")
    assert not ParticipantContact.objects.exists()
