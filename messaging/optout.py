"""Opting out of (and back in to) a channel: e-mail unsubscribe, SMS STOP/START, a carrier's
"unsubscribed" answer. Each change is audited, without the address or number."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from cohorts.models import ParticipantContact
from cohorts.services import audit_record

Channel = ParticipantContact.Channel


def _field(channel: str) -> str:
    return "email_opted_out_at" if channel == Channel.EMAIL else "sms_opted_out_at"


def contact_opt_out(*, contact: ParticipantContact, channel: str, via: str) -> bool:
    """Stop ``channel`` for this contact; False if it was already stopped (nothing audited)."""
    field = _field(channel)
    changed = ParticipantContact.objects.filter(Q(**{f"{field}__isnull": True}), pk=contact.pk).update(
        **{field: timezone.now()}
    )
    if changed:
        participant = contact.participant
        audit_record(
            action=f"contact.{channel}_opted_out",
            participant=participant,
            target=participant.code,
            detail={"via": via},
        )
    return bool(changed)


def contact_opt_in(*, contact: ParticipantContact, channel: str, via: str) -> bool:
    """Resume ``channel`` (SMS START); False if it was not stopped."""
    field = _field(channel)
    changed = ParticipantContact.objects.filter(Q(**{f"{field}__isnull": False}), pk=contact.pk).update(
        **{field: None}
    )
    if changed:
        participant = contact.participant
        audit_record(
            action=f"contact.{channel}_opted_in",
            participant=participant,
            target=participant.code,
            detail={"via": via},
        )
    return bool(changed)
