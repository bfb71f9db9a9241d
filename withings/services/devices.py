"""getdevice after linking and daily: model, battery, last sync time per participant."""

from __future__ import annotations

from measurements.readings import devices_upsert
from withings.models import WithingsConnection

from .api import ConnectionApi


def connection_refresh_devices(*, connection_id: int) -> int:
    connection = WithingsConnection.objects.select_related("app").get(pk=connection_id)
    body = ConnectionApi.for_connection(connection).post("/v2/user", {"action": "getdevice"})
    devices = body.get("devices") if isinstance(body, dict) else None
    monitors = [
        d
        for d in (devices if isinstance(devices, list) else [])
        if isinstance(d, dict) and "blood pressure" in str(d.get("type", "")).lower()
    ]
    return devices_upsert(participant_id=connection.participant_id, devices=monitors)
