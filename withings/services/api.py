"""Authenticated data calls for a connection: rate-limited, refresh once on 401, then give up.

    api = ConnectionApi.for_connection(connection)      # or ConnectionApi.for_id(pk)
    body = api.post("/measure", {"action": "getmeas", "meastypes": "9,10,11", ...})

``post`` returns the unwrapped ``body``. On a 401 it refreshes under the row lock (or picks up the
token another worker just stored), retries once, and if that is rejected too records
``needs_reauth`` and raises ``WithingsAuthError``. Other errors: see ``withings.errors``.
"""

from __future__ import annotations

from typing import Any

from django.utils.timezone import now

from withings.client import api_post
from withings.errors import ConnectionNotUsable, WithingsAuthError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE, app_credentials_for_connection

from .tokens import connection_mark_needs_reauth, connection_refresh


class ConnectionApi:
    def __init__(self, connection: WithingsConnection) -> None:
        self.connection_id = connection.pk
        self._load(connection)

    @classmethod
    def for_connection(cls, connection: WithingsConnection) -> ConnectionApi:
        return cls(connection)

    @classmethod
    def for_id(cls, connection_id: int) -> ConnectionApi:
        return cls(WithingsConnection.objects.select_related("app").get(pk=connection_id))

    def _load(self, connection: WithingsConnection) -> None:
        self.connection = connection
        self._credentials = app_credentials_for_connection(connection)

    def _reload(self) -> None:
        self._load(WithingsConnection.objects.select_related("app").get(pk=self.connection_id))

    def _ensure_usable(self) -> None:
        if self.connection.status not in REFRESHABLE or not self.connection.access_token:
            raise ConnectionNotUsable(f"connection is {self.connection.status}")

    def post(self, path: str, params: dict[str, Any]) -> dict:
        self._ensure_usable()
        expires = self.connection.access_expires_at
        if expires is not None and expires <= now():
            connection_refresh(
                connection_id=self.connection_id, stale_access_token=self.connection.access_token
            )
            self._reload()
            self._ensure_usable()
        try:
            return api_post(self._credentials, path, params, access_token=self.connection.access_token)
        except WithingsAuthError:
            rejected = self.connection.access_token
        connection_refresh(connection_id=self.connection_id, stale_access_token=rejected)
        self._reload()
        self._ensure_usable()
        try:
            return api_post(self._credentials, path, params, access_token=self.connection.access_token)
        except WithingsAuthError as exc:
            connection_mark_needs_reauth(
                connection_id=self.connection_id, reason=exc.short, access_token=self.connection.access_token
            )
            raise


def connection_call(*, connection_id: int, path: str, params: dict[str, Any]) -> dict:
    """One authenticated call for a connection id (see ``ConnectionApi``)."""
    return ConnectionApi.for_id(connection_id).post(path, params)
