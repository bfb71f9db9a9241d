"""The two channels: e-mail through Django's mail backend (SMTP in production) and SMS through
``SMS_BACKEND`` — ``console`` or ``twilio`` (Twilio's Messages REST API at ``TWILIO_API_URL``).

A send returns the provider's id or raises one of the ``SendError`` kinds below, which say what the
dispatcher does next. Nothing here logs an address or a number; the console backend (development) shows a
participant's text (the wording a coordinator checks), never a staff member's (a safety escalation).
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import make_msgid
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from cohorts.models import Participant

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "messaging.unsubscribe"
#: Twilio error codes: the recipient replied STOP (the carrier blocks us) / the number is not usable.
TWILIO_UNSUBSCRIBED = 21610
TWILIO_BAD_NUMBER = frozenset({21211, 21214, 21217, 21407, 21408, 21612, 21614})


class SendError(Exception):
    """A send that did not happen. ``str()`` is safe to store: it never holds contact details."""


class TransientSendError(SendError):
    """Try again later (network, timeout, 429, 5xx, a 4xx SMTP reply)."""


class PermanentSendError(SendError):
    """Will not work if repeated; ``bad_address`` flags the number/address for the coordinator."""

    def __init__(self, message: str, *, bad_address: bool = False, bounced: bool = False) -> None:
        super().__init__(message)
        self.bad_address = bad_address
        self.bounced = bounced


class RecipientOptedOut(SendError):
    """The provider says the recipient unsubscribed (Twilio 21610)."""


@dataclass(frozen=True)
class Outgoing:
    to: str
    subject: str
    body: str
    #: None: a text to a staff member (a safety escalation through ``staff_sms_senders``).
    participant_id: int | None


# -- e-mail ------------------------------------------------------------------------------------


def _unsubscribe_signer() -> signing.Signer:
    return signing.Signer(salt=UNSUBSCRIBE_SALT, algorithm="sha256")


def unsubscribe_token(participant_id: int) -> str:
    """The same link in every e-mail to a participant; it never expires (RFC 8058 clients may use
    it long after), and it can do only one thing: stop e-mails."""
    return _unsubscribe_signer().sign(str(participant_id))


def unsubscribe_participant_id(token: str) -> int | None:
    try:
        value = _unsubscribe_signer().unsign(token)
    except signing.BadSignature:
        return None
    return int(value) if value.isdigit() else None


def unsubscribe_url(participant_id: int) -> str:
    path = reverse("messaging_unsubscribe", args=[unsubscribe_token(participant_id)])
    return f"{settings.PORTAL_BASE_URL}{path}"


def send_email(outgoing: Outgoing) -> str:
    """Send one e-mail with RFC 8058 one-click unsubscribe headers; returns its Message-ID."""
    if outgoing.participant_id is None:
        raise PermanentSendError("e-mail through the channels is for participants only")
    link = unsubscribe_url(outgoing.participant_id)
    language = (
        Participant.objects.filter(pk=outgoing.participant_id).values_list("language", flat=True).first()
        or "en"
    )
    with translation.override(language):
        footer = gettext("To receive no more e-mails from the study: %(link)s") % {"link": link}
    message_id = make_msgid(domain=urlsplit(settings.PORTAL_BASE_URL).hostname or "localhost")
    email = EmailMessage(
        subject=outgoing.subject,
        body=f"{outgoing.body}\n\n--\n{footer}\n",
        to=[outgoing.to],
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        connection=get_connection(fail_silently=False),
    )
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _msg in exc.recipients.values()})
        if codes and all(400 <= code < 500 for code in codes):
            raise TransientSendError(f"SMTP recipient refused for now ({codes[0]})") from None
        raise PermanentSendError(
            f"SMTP recipient refused ({codes[0] if codes else '?'})", bad_address=True, bounced=True
        ) from None
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientSendError(f"SMTP server said {exc.smtp_code}") from None
        raise PermanentSendError(f"SMTP server said {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientSendError(f"SMTP unavailable ({type(exc).__name__})") from None
    return message_id.strip("<>")[:64]


# -- SMS -------------------------------------------------------------------------------------


def status_callback_url() -> str:
    return f"{settings.PORTAL_BASE_URL}{reverse('messaging_twilio_status')}"


def send_sms(outgoing: Outgoing) -> tuple[str, str]:
    """Send one text; returns (provider id, provider status)."""
    backend = settings.SMS_BACKEND
    if backend == "console":
        return _send_console(outgoing)
    if backend == "twilio":
        return _send_twilio(outgoing)
    raise PermanentSendError(f"SMS_BACKEND {backend!r} is not console or twilio")


def _send_console(outgoing: Outgoing) -> tuple[str, str]:
    """Development: a participant's text on the console, the number never; a staff text only as a
    staff text (neither number nor text)."""
    provider_id = f"console-{make_msgid().strip('<>').split('@')[0]}"[:64]
    if outgoing.participant_id is None:
        logger.info("SMS (console backend) %s to a staff member (safety escalation, %d characters; "
                    "number and text not logged)", provider_id, len(outgoing.body))  # fmt: skip
    else:
        logger.info("SMS (console backend) %s to participant %s:\n%s", provider_id, outgoing.participant_id,
                    outgoing.body)  # fmt: skip
    return provider_id, "sent"


def _send_twilio(outgoing: Outgoing) -> tuple[str, str]:
    sid = settings.TWILIO_ACCOUNT_SID
    if not (sid and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER):
        raise PermanentSendError(
            "SMS not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"
        )
    url = f"{settings.TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json"
    data = {
        "To": outgoing.to,
        "From": settings.TWILIO_FROM_NUMBER,
        "Body": outgoing.body,
        "StatusCallback": status_callback_url(),
    }
    try:
        response = requests.post(
            url, data=data, auth=(sid, settings.TWILIO_AUTH_TOKEN), timeout=settings.TWILIO_HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        raise TransientSendError(f"SMS gateway unreachable ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientSendError(f"SMS gateway answered {response.status_code}")
    try:
        payload = response.json()
    except ValueError:
        raise TransientSendError(f"SMS gateway answered {response.status_code} without JSON") from None
    if not isinstance(payload, dict):
        raise TransientSendError(f"SMS gateway answered {response.status_code} with an unexpected body")
    if response.status_code >= 400:
        code = payload.get("code")
        if code == TWILIO_UNSUBSCRIBED:
            raise RecipientOptedOut(f"Twilio {code}: the recipient replied STOP")
        raise PermanentSendError(
            f"Twilio {code or response.status_code}", bad_address=code in TWILIO_BAD_NUMBER
        )
    provider_id = str(payload.get("sid") or "")
    if not provider_id:
        raise TransientSendError("SMS gateway accepted the message without an id")
    return provider_id[:64], str(payload.get("status") or "queued")
