"""Linking a participant's Withings account (the OAuth callback) and revoking the grant."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.timezone import now

from cohorts.models import Participant
from cohorts.services import audit_record
from withings.client import AppCredentials, TokenSet, exchange_code, signed_revoke
from withings.errors import WithingsAccountAlreadyLinked
from withings.models import WithingsConnection
from withings.selectors import app_credentials_for_connection, app_credentials_for_study

from .linkstate import link_status_record

logger = logging.getLogger(__name__)
Status = WithingsConnection.Status

#: fields describing what was synced for one Withings account; reset when another account links.
SYNC_FIELDS = (
    "sync_watermark", "last_sync_at", "last_notification_at", "subscribed_at",
    "backfill_cursor", "backfill_completed_at", "backfill_progress_at",
)  # fmt: skip


def connection_create_from_code(*, participant_id: int, code: str, redirect_uri: str) -> WithingsConnection:
    """Exchange the authorization code (inside the callback request: it lives 30 s) and store
    the encrypted tokens. Nothing is written when the exchange fails."""
    participant = Participant.objects.only("pk", "study_id").get(pk=participant_id)
    credentials = app_credentials_for_study(study_id=participant.study_id)
    tokens = exchange_code(credentials, code=code, redirect_uri=redirect_uri)
    return connection_store_tokens(participant_id=participant_id, credentials=credentials, tokens=tokens)


@transaction.atomic
def connection_store_tokens(
    *, participant_id: int, credentials: AppCredentials, tokens: TokenSet
) -> WithingsConnection:
    """Create or re-link the participant's connection with a fresh token pair."""
    participant = Participant.objects.select_for_update().get(pk=participant_id)
    taken = (
        WithingsConnection.objects.filter(app_client_id=credentials.client_id, withings_userid=tokens.userid)
        .exclude(participant_id=participant_id)
        .exists()
    )
    if taken:
        raise WithingsAccountAlreadyLinked("this Withings account is linked to another participant")
    conn = WithingsConnection.objects.select_for_update().filter(participant_id=participant_id).first()
    created = conn is None
    if created:
        conn = WithingsConnection(participant=participant)
    elif conn.withings_userid != tokens.userid or conn.app_client_id != credentials.client_id:
        for name in SYNC_FIELDS:
            setattr(conn, name, None)
        conn.subscription_state = WithingsConnection.SubscriptionState.UNKNOWN
    conn.app_id = credentials.app_id
    conn.app_client_id = credentials.client_id
    conn.withings_userid = tokens.userid
    conn.set_tokens(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        scope=tokens.scope,
    )
    conn.status = Status.ACTIVE
    conn.refresh_failures = 0
    conn.last_error = ""
    conn.linked_at = now()
    conn.full_clean()
    conn.save()
    link_status_record(
        participant_id=participant_id, link_status=Participant.LinkStatus.ACTIVE, reason="linked"
    )
    audit_record(
        action="withings.linked",
        participant=participant,
        target=participant.code,
        detail={"relinked": not created, "scope": conn.scope, "app": credentials.client_id},
    )
    from withings.tasks import after_link

    connection_id = conn.pk
    transaction.on_commit(lambda: after_link.delay(connection_id))
    return conn


def connection_revoke_grant(*, connection_id: int, actor=None, reason: str = "") -> bool:
    """Withdrawal: revoke the grant upstream (signed call; it also drops the user's notification
    subscriptions), then wipe the stored tokens and record ``revoked``. Returns False if it
    was revoked already. Upstream errors propagate and leave the connection unchanged."""
    conn = WithingsConnection.objects.select_related("app", "participant").get(pk=connection_id)
    if conn.status == Status.REVOKED:
        return False
    signed_revoke(app_credentials_for_connection(conn), userid=conn.withings_userid)
    with transaction.atomic():
        conn = WithingsConnection.objects.select_for_update().get(pk=connection_id)
        conn.access_token = ""
        conn.refresh_token = ""
        conn.refresh_due_at = None
        conn.status = Status.REVOKED
        conn.subscription_state = WithingsConnection.SubscriptionState.MISSING
        conn.save(
            update_fields=[
                "access_token", "refresh_token", "refresh_due_at", "status", "subscription_state",
                "updated_at",
            ]
        )  # fmt: skip
        link_status_record(
            participant_id=conn.participant_id,
            link_status=Participant.LinkStatus.REVOKED,
            reason=reason or "grant revoked",
        )
        audit_record(
            actor=actor,
            action="withings.grant_revoked",
            participant=conn.participant,
            target=conn.participant.code,
            detail={"reason": reason[:200]},
        )
    return True
