"""Inbox processing helpers: status bookkeeping and account events (appli 46)."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils.timezone import now

from ..errors import WithingsAuthError, WithingsTerminalError
from ..models import Notification, WithingsConnection
from .api import ConnectionApi

logger = logging.getLogger(__name__)


def notification_mark(notification_id: int, status: str, error: str = "") -> None:
    Notification.objects.filter(pk=notification_id).update(
        status=status, processed_at=now(), error=error[:255]
    )


def notification_start_attempt(*, notification_id: int) -> Notification | None:
    """Count an attempt at a pending delivery and return it; None when there is nothing left to do
    (processed meanwhile — an earlier sync of its connection covered it — or gone)."""
    notification = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).first()
    if notification is not None:
        Notification.objects.filter(pk=notification_id).update(attempts=F("attempts") + 1)
    return notification


def notification_handle_user_event(*, notification_id: int) -> str:
    """appli 46 (`unlink`, `delete`, `update`): notifications are unsigned, so the event is only a
    reason to check the link with an authenticated call. A dead grant fails that call, and the API
    layer records `needs_reauth` (which alerts the study's coordinators)."""
    notification = Notification.objects.select_related("connection").get(pk=notification_id)
    connection = notification.connection
    outcome = "link ok"
    if connection is not None and connection.status != WithingsConnection.Status.REVOKED:
        try:
            ConnectionApi.for_connection(connection).post("/notify", {"action": "list"})
        except WithingsAuthError as exc:
            outcome = f"link broken: {exc.short}"
        except WithingsTerminalError as exc:
            outcome = f"check failed: {exc.short}"
    logger.info(
        "withings account event %s for connection %s: %s",
        notification.action,
        notification.connection_id,
        outcome,
    )
    notification_mark(notification_id, Notification.Status.PROCESSED, outcome)
    return outcome
