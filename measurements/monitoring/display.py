"""How monitoring pages word an alert for staff: its BP value, its age, instants in the participant's
zone with the zone named."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from core.localtime import zoned_time
from measurements.models import Alert


def age(delta: dt.timedelta) -> str:
    """ "3 h", "2 days", "12 min" (for "… ago")."""
    if delta.days >= 2:
        return f"{delta.days} days"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} h" if hours >= 1 else f"{max(int(delta.total_seconds() // 60), 0)} min"


def local_time(when: dt.datetime, zone: str) -> str:
    """ "2026-12-01 21:14 CET (Europe/Paris)": the staff pages' way of showing an instant
    (`core.localtime`), the zone named in full where there is room for it."""
    return f"{zoned_time(when, zone)} ({zone})"


def bp_value(alert: Alert) -> str | None:
    """ "186/124 mmHg" for an alert raised by a reading, None otherwise."""
    try:
        systolic = Decimal(alert.detail["systolic"])
        diastolic = Decimal(alert.detail["diastolic"])
    except (KeyError, TypeError, InvalidOperation):
        return None
    return f"{systolic:.0f}/{diastolic:.0f} mmHg"
