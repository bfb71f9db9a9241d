"""The notification inbox: receiving a delivery (the callback URL, dedupe, store, queue after commit),
status bookkeeping and account events (appli 46).

Notifications are not signed (docs/withings-api.md §3): the unguessable secret in the URL and a known
`userid` decide whether we do any work, and the payload is only a hint — processing always
re-fetches through the authenticated API.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.timezone import now

from withings.errors import WithingsAuthError, WithingsTerminalError
from withings.models import Notification, WithingsConnection

from .api import ConnectionApi

logger = logging.getLogger(__name__)
KNOWN_KEYS = ("userid", "appli", "startdate", "enddate", "date", "action", "deviceid")
MAX_VALUE_LENGTH = 64


def notify_secret() -> str:
    """The configured secret, or one derived from SECRET_KEY (stable, unguessable)."""
    if settings.WITHINGS_NOTIFY_SECRET:
        return settings.WITHINGS_NOTIFY_SECRET
    return hmac.new(settings.SECRET_KEY.encode(), b"withings-notify", hashlib.sha256).hexdigest()[:40]


def notify_callback_url() -> str:
    return f"{settings.PORTAL_BASE_URL}/withings/notify/{notify_secret()}/"


def notify_secret_matches(secret: str) -> bool:
    return hmac.compare_digest(secret.encode(), notify_secret().encode())


def dedupe_key(payload: dict[str, str]) -> str:
    canonical = "&".join(f"{k}={payload[k]}" for k in sorted(payload))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _int(value: str | None, *, bits: int = 64) -> int | None:
    """An integer that fits the column (bigint, or integer for `appli`), else None: a hint we ignore."""
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    limit = 2 ** (bits - 1)
    return number if number is None or -limit <= number < limit else None


def notification_receive(*, payload: dict[str, str]) -> Notification | None:
    """Store a delivery in the inbox (pending for a known user, ignored otherwise) and queue its
    processing after commit. None when an identical delivery is already waiting (a retry)."""
    userid = payload["userid"]
    connection_id = (
        WithingsConnection.objects.filter(withings_userid=userid).values_list("pk", flat=True).first()
    )
    status = Notification.Status.PENDING if connection_id else Notification.Status.IGNORED
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                dedupe_key=dedupe_key(payload),
                userid=userid,
                appli=_int(payload.get("appli"), bits=32),
                startdate=_int(payload.get("startdate")),
                enddate=_int(payload.get("enddate")),
                action=payload.get("action", ""),
                payload=payload,
                connection_id=connection_id,
                status=status,
                received_at=now(),
            )
            if connection_id:
                from withings.tasks import process_notification

                transaction.on_commit(lambda: process_notification.delay(notification.pk))
    except IntegrityError:
        return None  # a retried delivery: already in the inbox
    return notification


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
