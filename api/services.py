"""Tokens: create (the plaintext is returned once), authenticate, revoke — each audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.timezone import now

from cohorts.services import audit_record

from .models import AccessToken

TOKEN_PREFIX = "cpat_"  # cohort portal access token: easy to spot in a leaked file or a secret scanner
MAX_LIFETIME = dt.timedelta(days=366)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def access_token_create(
    *, user, name: str, expires_at: dt.datetime, deidentified_only: bool = False
) -> tuple[AccessToken, str]:
    """A new token for `user`; returns the row and the token, which is never stored nor shown again."""
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("Only active staff accounts may hold API tokens.")
    if expires_at <= now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at > now() + MAX_LIFETIME:
        raise ValidationError({"expires_at": "A token may live one year at most."})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AccessToken(
        user=user,
        name=name,
        prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=token_digest(token),
        expires_at=expires_at,
        deidentified_only=deidentified_only,
    )
    row.full_clean()
    row.save()
    audit_record(
        actor=user,
        action="api_token.created",
        target=row.prefix,
        detail={"name": name, "expires_at": expires_at.isoformat(), "deidentified_only": deidentified_only},
    )
    return row, token


def access_token_revoke(*, actor, token: AccessToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor, action="api_token.revoked", target=token.prefix, detail={"owner": token.user.email}
    )


def access_token_lookup(token: str) -> AccessToken | None:
    """The token row for a presented token (usable or not), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return AccessToken.objects.select_related("user").filter(token_hash=token_digest(token)).first()


def access_token_touch(token: AccessToken) -> None:
    """Record the use, at most once a minute (a hot row otherwise)."""
    at = now()
    if token.last_used_at is None or at - token.last_used_at > dt.timedelta(minutes=1):
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=at)
        token.last_used_at = at
