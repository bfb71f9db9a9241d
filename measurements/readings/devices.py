"""A participant's cuffs as getdevice describes them (model, battery, last sync)."""

from __future__ import annotations

from django.db.models import Case, Q, When
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from measurements.models import Device

from .parse import instant_from_unix, int_or_none

DEVICE_FIELDS = (
    "device_type",
    "model",
    "model_id",
    "battery",
    "timezone",
    "first_session_at",
    "last_session_at",
    "updated_at",
)


def devices_upsert(*, participant_id: int, devices: list[dict]) -> int:
    """Store getdevice's blood-pressure monitors for a participant (model, battery, last sync).

    One answer may list the same device more than once (a recorded real answer does): the entry
    with the latest ``last_session_date`` is kept (the first of equals), so the upsert touches each
    row once. Returns how many devices were stored."""
    rows: dict[str, Device] = {}
    stamp = now()
    for item in devices:
        if not isinstance(item, dict):
            continue
        device_id = item.get("hash_deviceid") or item.get("deviceid")
        if not isinstance(device_id, str) or not device_id:
            continue
        row = Device(
            participant_id=participant_id,
            device_id=device_id[:64],
            device_type=str(item.get("type") or "")[:64],
            model=str(item.get("model") or "")[:64],
            model_id=int_or_none(item.get("model_id", item.get("modelid"))),
            battery=str(item.get("battery") or "")[:16],
            timezone=str(item.get("timezone") or "")[:64],
            first_session_at=instant_from_unix(item.get("first_session_date")),
            last_session_at=instant_from_unix(item.get("last_session_date")),
            updated_at=stamp,
        )
        kept = rows.get(row.device_id)
        if kept is None or _later_session(row, than=kept):
            rows[row.device_id] = row
    if rows:
        Device.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["participant", "device_id"],
            update_fields=list(DEVICE_FIELDS),
        )
        _battery_episodes(participant_id)
    return len(rows)


LOW_BATTERY = "low"


def _battery_episodes(participant_id: int) -> None:
    """Start a low-battery episode when the battery turns "low", end it when it no longer is."""
    low, unmarked = Q(battery=LOW_BATTERY), Q(battery_low_since__isnull=True)
    Device.objects.filter(Q(participant_id=participant_id) & ((low & unmarked) | (~low & ~unmarked))).update(
        battery_low_since=Case(When(low, then=Coalesce("battery_low_since", "updated_at")), default=None)
    )


def _later_session(row, *, than) -> bool:
    if row.last_session_at is None:
        return False
    return than.last_session_at is None or row.last_session_at > than.last_session_at
