"""Withdrawal, Withings side: drop our notification subscriptions, revoke the grant (signed call),
wipe the tokens. If Withings cannot be reached after the retries, the tokens are wiped anyway and
the connection shows why — a withdrawn participant's tokens never stay in our database."""

from __future__ import annotations

import logging

from django.db import transaction

from cohorts.models import Participant
from cohorts.services import audit_record
from withings.errors import WithingsAuthError, WithingsError, WithingsTerminalError, WithingsTransientError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE

from .link import connection_revoke_grant
from .linkstate import link_status_record
from .subscriptions import connection_unsubscribe

logger = logging.getLogger(__name__)
Status = WithingsConnection.Status


def connection_wipe_tokens(*, connection_id: int, reason: str) -> None:
    with transaction.atomic():
        conn = (
            WithingsConnection.objects.select_for_update().select_related("participant").get(pk=connection_id)
        )
        conn.access_token = ""
        conn.refresh_token = ""
        conn.refresh_due_at = None
        conn.status = Status.REVOKED
        conn.last_error = reason[:255]
        conn.save(update_fields=["access_token", "refresh_token", "refresh_due_at", "status", "last_error",
                                 "updated_at"])  # fmt: skip
        link_status_record(
            participant_id=conn.participant_id, link_status=Participant.LinkStatus.REVOKED, reason=reason
        )
        audit_record(
            action="withings.tokens_wiped",
            participant=conn.participant,
            target=conn.participant.code,
            detail={"reason": reason[:200]},
        )


def participant_withdraw_withings(*, participant_id: int, final_attempt: bool = False) -> str:
    conn = WithingsConnection.objects.filter(participant_id=participant_id).first()
    if conn is None or conn.status == Status.REVOKED:
        return "nothing to revoke"
    if conn.status in REFRESHABLE:
        try:
            connection_unsubscribe(connection_id=conn.pk)
        except (WithingsAuthError, WithingsTerminalError) as exc:
            logger.info("withdrawal: unsubscribe skipped for connection %s: %s", conn.pk, exc.short)
        except WithingsTransientError:
            if not final_attempt:
                raise
    try:
        connection_revoke_grant(connection_id=conn.pk, reason="participant withdrew")
        return "revoked"
    except WithingsTransientError as exc:
        if not final_attempt:
            raise
        connection_wipe_tokens(connection_id=conn.pk, reason=f"withdrawn; Withings unreachable: {exc.short}")
    except WithingsError as exc:
        connection_wipe_tokens(connection_id=conn.pk, reason=f"withdrawn; revoke refused: {exc.short}")
    return "wiped"
