"""Reads about a participant's readings (status page, monitoring)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.timezone import now

from ..models import BloodPressureReading

DEFAULT_READINGS_PER_DAY = 4  # the home-BP protocol: 2 in the morning, 2 in the evening


def readings_per_day_target(participant) -> int:
    protocol = getattr(participant.study, "protocol", None)
    per_day = getattr(protocol, "expected_per_day", None)
    return int(per_day) if per_day else DEFAULT_READINGS_PER_DAY


def participant_status_summary(participant) -> dict[str, Any]:
    """For the participant's own status page: last reading, readings in the last 7 days vs target."""
    readings = BloodPressureReading.objects.filter(participant=participant, deleted_upstream=False)
    last = readings.order_by("-measured_at").only("measured_at", "systolic", "diastolic", "pulse").first()
    week = readings.filter(measured_at__gte=now() - dt.timedelta(days=7)).count()
    return {
        "last_reading": last,
        "readings_last_7_days": week,
        "weekly_target": readings_per_day_target(participant) * 7,
    }
