"""Reads about a participant's readings for their own status page."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.timezone import now

from measurements.models import BloodPressureReading
from measurements.monitoring.protocol import participant_period, protocol_for_study, week_expected


def participant_status_summary(participant) -> dict[str, Any]:
    """Last reading, readings in the last 7 days, and the weekly target as the coordinators see it
    (`week_expected`: the protocol's expectation over the seven complete local days before today)."""
    readings = BloodPressureReading.objects.filter(participant=participant, deleted_upstream=False)
    last = readings.order_by("-measured_at").only("measured_at", "systolic", "diastolic", "pulse").first()
    week = readings.filter(measured_at__gte=now() - dt.timedelta(days=7)).count()
    protocol = protocol_for_study(participant.study_id)
    period = participant_period(participant, protocol, participant.study)
    today = now().astimezone(ZoneInfo(participant.timezone)).date()
    return {
        "last_reading": last,
        "readings_last_7_days": week,
        "weekly_target": week_expected(protocol=protocol, period=period, today=today),
    }
