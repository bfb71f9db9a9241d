"""E-mail bounces: delivery status notifications (DSN, RFC 3464) read from a mailbox.

The portal's mail server accepts a message and only later learns that the mailbox does not exist;
it then mails a DSN back to the envelope sender. Point that address's mailbox (an mbox file, or a
pipe from the mail server) at ``manage.py messaging_bounces``: each DSN reporting ``Action: failed``
with a permanent ``Status: 5.x.x`` marks the message it returns (found by its ``Message-ID``, which
the portal set itself) ``bounced`` and counts against the address; a bad mailbox or domain (5.1.x)
flags the address at once. Delays (``Action: delayed``, 4.x.x) and anything not a DSN are ignored.
Nothing read here — addresses, diagnostic texts — is stored or printed; only the status code is.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from email.message import Message as EmailMessage
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from cohorts.models import ParticipantContact

from .models import Message

Status = Message.Status
EMAIL = ParticipantContact.Channel.EMAIL
STATUS_CODE = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


def _header_blocks(part: EmailMessage) -> list[EmailMessage]:
    """The field blocks of a message/delivery-status part (per-message, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, EmailMessage)]
    if isinstance(payload, str):  # some parsers leave it as text: blocks are separated by blank lines
        chunks = re.split(r"\r?\n\r?\n", payload)
        return [email.message_from_string(chunk + "\n") for chunk in chunks if chunk]
    return []


def _original_message_id(report: EmailMessage) -> str:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(original, EmailMessage) and original.get("Message-ID"):
                return str(original["Message-ID"])
        elif kind == "text/rfc822-headers":
            headers = email.message_from_string(_text(part))
            if headers.get("Message-ID"):
                return str(headers["Message-ID"])
    return ""


def _text(part: EmailMessage) -> str:
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    return str(part.get_payload())


def permanent_failure(report: EmailMessage) -> str | None:
    """The permanent status code (e.g. ``5.1.1``) of a DSN reporting a failed delivery, else None."""
    if report.get_content_type() != "multipart/report":
        return None
    if (report.get_param("report-type") or "").lower() != "delivery-status":
        return None
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _header_blocks(part)[1:] or _header_blocks(part):
            action = str(block.get("Action", "")).strip().lower()
            match = STATUS_CODE.match(str(block.get("Status", "")))
            if action == "failed" and match and match.group(1) == "5":
                return ".".join(match.groups())
    return None


def bounce_apply(report: EmailMessage) -> str:
    """Apply one mail: ``bounced``, ``unmatched`` (a DSN for no e-mail of ours, or already
    bounced), or ``ignored`` (not a permanent-failure DSN)."""
    code = permanent_failure(report)
    if code is None:
        return "ignored"
    message_id = _original_message_id(report).strip().strip("<>")[:64]
    if not message_id:
        return "unmatched"
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(channel=EMAIL, provider_id=message_id, status__in=[Status.SENT, Status.DELIVERED])
            .first()
        )
        if message is None:
            return "unmatched"
        Message.objects.filter(pk=message.pk).update(
            status=Status.BOUNCED, error=f"Bounced (DSN {code})", status_changed_at=timezone.now()
        )
        failures = F("email_failures") + 1
        if code.startswith("5.1."):  # bad mailbox, bad domain: the address is unusable
            failures = Greatest(failures, settings.MESSAGING_FLAG_AFTER_FAILURES)
        ParticipantContact.objects.filter(participant_id=message.participant_id).update(
            email_failures=failures
        )
    return "bounced"


def mails_in(path: str, stdin: Iterable[bytes] | None = None) -> Iterator[EmailMessage]:
    """The mails of an mbox file, of a single-message file, or of standard input (``-``)."""
    policy = email.policy.compat32
    if path == "-":
        yield email.message_from_bytes(b"".join(stdin or []), policy=policy)
        return
    file = Path(path)
    with file.open("rb") as handle:
        first = handle.readline()
    if first.startswith(b"From "):
        box = mailbox.mbox(str(file), create=False)
        try:
            for key in box.iterkeys():
                yield email.message_from_bytes(box.get_bytes(key), policy=policy)
        finally:
            box.close()
    else:
        yield email.message_from_bytes(file.read_bytes(), policy=policy)


def bounces_process(mails: Iterable[EmailMessage]) -> Counter[str]:
    return Counter(bounce_apply(mail) for mail in mails)
