"""Texts participants send: STOP / START / HELP obeyed (and audited), every text kept for the
participant's coordinators. A number the portal does not know is stored without a participant and
gets no answer."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts.contacts import phone_lookup, phone_normalise
from cohorts.models import ParticipantContact
from cohorts.services import audit_record

from . import wording
from .models import InboundMessage, Message, Reason
from .optout import contact_opt_in, contact_opt_out

Channel = ParticipantContact.Channel
# Twilio's standard opt-out / opt-in / help keywords (the whole text, case-insensitive).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})


@dataclass(frozen=True)
class InboundOutcome:
    keyword: str  # STOP, START, HELP or ""
    reply: str  # the text to answer with (TwiML), or "" for no answer


def keyword_of(body: str) -> str:
    word = body.strip().upper().rstrip(".!")
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return ""


def _contacts_for(number: str) -> list[ParticipantContact]:
    try:
        e164 = phone_normalise(number, region=None)
    except ValidationError:  # a short code or garbage: nobody of ours
        return []
    lookup = phone_lookup(e164)
    if not lookup:
        return []
    return list(
        ParticipantContact.objects.select_related("participant", "participant__study")
        .filter(phone_lookup=lookup)
        .order_by("-updated_at")
    )


def inbound_receive(*, from_number: str, body: str, provider_id: str) -> InboundOutcome:
    """Store the text and obey its keyword; the same provider id twice is handled once."""
    keyword = keyword_of(body)
    contacts = _contacts_for(from_number)
    participant = contacts[0].participant if contacts else None
    try:
        with transaction.atomic():
            inbound = InboundMessage.objects.create(
                provider_id=provider_id[:64],
                participant=participant,
                study=participant.study if participant else None,
                keyword=keyword,
                body=body[:1600],
            )
            if participant is not None:
                audit_record(
                    action="message.received",
                    participant=participant,
                    target=participant.code,
                    detail={"keyword": keyword, "inbound": inbound.pk},
                )
    except IntegrityError:  # the provider retried a webhook we already handled
        return InboundOutcome(keyword, "")
    if participant is None:
        return InboundOutcome(keyword, "")
    if keyword == "STOP":
        for contact in contacts:
            contact_opt_out(contact=contact, channel=Channel.SMS, via="sms")
        reason = Reason.OPT_OUT
    elif keyword == "START":
        for contact in contacts:
            contact_opt_in(contact=contact, channel=Channel.SMS, via="sms")
        reason = Reason.OPT_IN
    elif keyword == "HELP":
        reason = Reason.HELP
    else:
        return InboundOutcome("", "")
    return InboundOutcome(keyword, _reply(contacts[0], reason, provider_id))


def _reply(contact: ParticipantContact, reason: str, provider_id: str) -> str:
    """The reply text, logged as a message answered through the webhook response (TwiML)."""
    participant = contact.participant
    study = participant.study
    template = wording.current_template(study, reason, Channel.SMS, contact.language)
    _subject, body = wording.render(template, {**wording.study_context(study), "code": participant.code})
    stamp = timezone.now()
    Message.objects.get_or_create(
        participant=participant,
        dedupe_key=f"{reason}:{provider_id}"[:120],
        defaults={
            "study": study,
            "reason": reason,
            "channel": Channel.SMS,
            "template": template,
            "body": body,
            "status": Message.Status.SENT,
            "local_day": timezone.localdate(stamp, timezone=ZoneInfo(participant.timezone)),
            "due_at": stamp,
            "sent_at": stamp,
            "attempts": 1,
        },
    )
    return body
