"""Token refresh: one service, serialised per connection by a row lock.

Withings rotates the refresh token on every refresh and kills the old one as soon as the new
access token is used, so two concurrent refreshes lock the participant out. Hence: lock the row,
re-read the token under the lock, skip if another worker already refreshed, call the token
endpoint, and persist both new tokens (``update_fields``) before anything can use the new access
token. A broken state is recorded in its own transaction after the refresh's one rolled back,
and the stored tokens are kept.
"""

from __future__ import annotations

import enum
import logging

from django.db import transaction
from django.db.models import F
from django.utils.timezone import now

from cohorts.models import Participant
from core import metrics
from withings.client import refresh_tokens
from withings.errors import WithingsAuthError, WithingsError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE, app_credentials_for_connection

from .linkstate import link_status_record

logger = logging.getLogger(__name__)
Status = WithingsConnection.Status
LinkStatus = Participant.LinkStatus


class RefreshOutcome(enum.StrEnum):
    REFRESHED = "refreshed"
    SKIPPED = "skipped"  # another worker refreshed already, or not due yet
    INACTIVE = "inactive"  # needs re-authorization or revoked: nothing to refresh


def connection_refresh(
    *, connection_id: int, stale_access_token: str | None = None, force: bool = False
) -> RefreshOutcome:
    """Refresh the connection's tokens unless someone already did.

    ``stale_access_token``: the token a data call just saw rejected — refresh only if it is still
    the stored one. Otherwise refresh only when due (past half-life) unless ``force``.
    Raises ``WithingsAuthError`` (recorded: needs_reauth), ``WithingsTransientError`` (recorded:
    refresh_failed; retry later) or ``WithingsTerminalError`` (recorded: refresh_failed).
    """
    tried: str | None = None
    previous = None
    try:
        with transaction.atomic():
            conn = (
                WithingsConnection.objects.select_for_update(of=("self",))
                .select_related("app")
                .get(pk=connection_id)
            )
            if conn.status not in REFRESHABLE:
                return RefreshOutcome.INACTIVE
            if stale_access_token is not None:
                if conn.access_token != stale_access_token:
                    return RefreshOutcome.SKIPPED
            elif not force and conn.refresh_due_at is not None and conn.refresh_due_at > now():
                return RefreshOutcome.SKIPPED
            previous, tried = conn.status, conn.refresh_token
            tokens = refresh_tokens(app_credentials_for_connection(conn), refresh_token=tried)
            if tokens.userid != conn.withings_userid:
                logger.warning("withings refresh: userid changed for connection %s", conn.pk)
            conn.set_tokens(
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_in=tokens.expires_in,
                scope=tokens.scope or conn.scope,
            )
            conn.status = Status.ACTIVE
            conn.last_refresh_at = now()
            conn.refresh_failures = 0
            conn.last_error = ""
            conn.save(
                update_fields=[
                    *WithingsConnection.TOKEN_FIELDS,
                    "status",
                    "last_refresh_at",
                    "refresh_failures",
                    "last_error",
                    "updated_at",
                ]
            )
    except WithingsAuthError as exc:
        if tried is not None:
            connection_mark_needs_reauth(connection_id=connection_id, reason=exc.short, refresh_token=tried)
        raise
    except WithingsError as exc:
        if tried is not None:
            _record_refresh_failure(connection_id, tried, exc)
        raise
    if previous != Status.ACTIVE:
        link_status_record(
            participant_id=conn.participant_id, link_status=LinkStatus.ACTIVE, reason="token refreshed"
        )
    return RefreshOutcome.REFRESHED


def connection_mark_needs_reauth(
    *,
    connection_id: int,
    reason: str,
    refresh_token: str | None = None,
    access_token: str | None = None,
) -> bool:
    """Record that the participant must authorize again; the stored tokens are kept.

    Given the token that failed, this is a no-op when the stored one has changed meanwhile
    (another worker refreshed, or the participant linked again). Returns True when recorded.
    """
    with transaction.atomic():
        conn = WithingsConnection.objects.select_for_update().get(pk=connection_id)
        if conn.status not in REFRESHABLE:
            return False
        if refresh_token is not None and conn.refresh_token != refresh_token:
            return False
        if access_token is not None and conn.access_token != access_token:
            return False
        conn.status = Status.NEEDS_REAUTH
        conn.last_error = reason[:255]
        conn.last_error_at = now()
        conn.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
    logger.warning("withings connection %s needs re-authorization: %s", connection_id, reason)
    metrics.inc("portal_withings_token_refresh_failures", app=conn.app_client_id, kind="needs_reauth")
    link_status_record(participant_id=conn.participant_id, link_status=LinkStatus.NEEDS_REAUTH, reason=reason)
    return True


def _record_refresh_failure(connection_id: int, tried: str, exc: WithingsError) -> None:
    with transaction.atomic():
        conn = WithingsConnection.objects.select_for_update().get(pk=connection_id)
        if conn.status not in REFRESHABLE or conn.refresh_token != tried:
            return
        conn.status = Status.REFRESH_FAILED
        conn.refresh_failures = F("refresh_failures") + 1
        conn.last_error = exc.short
        conn.last_error_at = now()
        conn.save(update_fields=["status", "refresh_failures", "last_error", "last_error_at", "updated_at"])
    metrics.inc("portal_withings_token_refresh_failures", app=conn.app_client_id, kind="transient")
    link_status_record(
        participant_id=conn.participant_id, link_status=LinkStatus.REFRESH_FAILED, reason=exc.short
    )
