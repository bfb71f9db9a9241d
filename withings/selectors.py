"""Reads: which Withings app a study or connection uses, and which connections need a refresh."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils.timezone import now

from cohorts.models import ConsentRecord, Participant

from .client import AppCredentials
from .models import Notification, WithingsApp, WithingsConnection

REFRESHABLE = (WithingsConnection.Status.ACTIVE, WithingsConnection.Status.REFRESH_FAILED)


def env_app_credentials() -> AppCredentials:
    return AppCredentials(
        client_id=settings.WITHINGS_CLIENT_ID, client_secret=settings.WITHINGS_CLIENT_SECRET
    )


def _app_credentials(app: WithingsApp) -> AppCredentials:
    return AppCredentials(client_id=app.client_id, client_secret=app.client_secret, app_id=app.pk)


def app_credentials_for_study(*, study_id: int) -> AppCredentials:
    """The study's own Withings app if it has one, else the env-configured app."""
    app = WithingsApp.objects.filter(study_id=study_id).first()
    return _app_credentials(app) if app is not None else env_app_credentials()


def app_credentials_for_connection(connection: WithingsConnection) -> AppCredentials:
    """The app the connection was linked with (its tokens belong to that app only)."""
    if connection.app_id is None:
        return env_app_credentials()
    return _app_credentials(connection.app)


def connection_ids_due_for_refresh(*, at: dt.datetime | None = None) -> list[int]:
    """Active (or retrying) connections past half their access-token life, oldest first."""
    at = at or now()
    return list(
        WithingsConnection.objects.filter(status__in=REFRESHABLE, refresh_due_at__lte=at)
        .order_by("refresh_due_at", "pk")
        .values_list("pk", flat=True)
    )


def connection_is_usable(*, connection_id: int) -> bool:
    return WithingsConnection.objects.filter(pk=connection_id, status__in=REFRESHABLE).exists()


def active_connection_ids():
    return (
        WithingsConnection.objects.filter(status__in=REFRESHABLE).order_by("pk").values_list("pk", flat=True)
    )


def connection_ids_due_for_poll(*, at: dt.datetime | None = None) -> list[int]:
    """Connections not synced for WITHINGS_POLL_HOURS (and whose back-fill is not running)."""
    at = at or now()
    cutoff = at - dt.timedelta(hours=settings.WITHINGS_POLL_HOURS)
    return list(
        active_connection_ids()
        .filter(backfill_cursor__isnull=True, sync_watermark__isnull=False)
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=cutoff))
    )


def stalled_backfills(*, at: dt.datetime | None = None):
    """Usable connections whose history back-fill is unfinished and has not moved for
    WITHINGS_BACKFILL_STALL_SECONDS (counting from the link when no step ever ran)."""
    cutoff = (at or now()) - dt.timedelta(seconds=settings.WITHINGS_BACKFILL_STALL_SECONDS)
    return (
        WithingsConnection.objects.filter(status__in=REFRESHABLE, backfill_completed_at__isnull=True)
        .exclude(participant__status=Participant.Status.WITHDRAWN)
        .filter(Exists(ConsentRecord.objects.filter(participant_id=OuterRef("participant_id"))))
        .filter(
            Q(backfill_progress_at__lt=cutoff) | Q(backfill_progress_at__isnull=True, linked_at__lt=cutoff)
        )
        .order_by("pk")
    )


def pending_notification_ids(*, older_than_seconds: int = 120) -> list[int]:
    cutoff = now() - dt.timedelta(seconds=older_than_seconds)
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:5000]
    )
