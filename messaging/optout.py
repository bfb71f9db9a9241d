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
    return _switch(contact, channel, via, stop=True)


def contact_opt_in(*, contact: ParticipantContact, channel: str, via: str) -> bool:
    """Resume ``channel`` (SMS START); False if it was not stopped."""
    return _switch(contact, channel, via, stop=False)


def _switch(contact: ParticipantContact, channel: str, via: str, *, stop: bool) -> bool:
    field = _field(channel)
    changed = ParticipantContact.objects.filter(Q(**{f"{field}__isnull": stop}), pk=contact.pk).update(
        **{field: timezone.now() if stop else None}
    )
    if changed:
        participant = contact.participant
        audit_record(
            action=f"contact.{channel}_opted_{'out' if stop else 'in'}",
            participant=participant,
            target=participant.code,
            detail={"via": via},
        )
    return bool(changed)
