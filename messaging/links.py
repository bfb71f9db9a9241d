"""The participant's own way back from a message: a signed, expiring link.

The portal keeps only a hash of the private status-page token, so a message cannot contain that
link. Instead it carries a signed participant id (Django's TimestampSigner, salted for this use): it
opens a small page of the study with the re-link button when the Withings link is broken. Nothing is
revoked or stored; the signature expires after ``MESSAGE_LINK_MAX_AGE_DAYS`` (14 days).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "messaging.participant-link"
MAX_AGE_DAYS = 14


def participant_link_token(participant_id: int) -> str:
    return signing.dumps(participant_id, salt=SALT, compress=False)


def participant_links() -> Callable[[int], str]:
    """``participant_link`` for many participants: the URL is reversed once."""
    marker = "TOKEN"
    head, tail = reverse("messaging_participant_link", args=[marker]).split(marker)
    base = settings.PORTAL_BASE_URL
    return lambda participant_id: f"{base}{head}{participant_link_token(participant_id)}{tail}"


def participant_link(participant_id: int) -> str:
    return participant_links()(participant_id)


def participant_from_link_token(token: str) -> int | None:
    """The participant id of a valid, unexpired token; None otherwise."""
    try:
        value = signing.loads(token, salt=SALT, max_age=MAX_AGE_DAYS * 86400)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return value if isinstance(value, int) else None
