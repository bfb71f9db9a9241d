"""Reads: which Withings app a study or connection uses, and which connections need a refresh."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.timezone import now

from .client import AppCredentials
from .models import WithingsApp, WithingsConnection

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
