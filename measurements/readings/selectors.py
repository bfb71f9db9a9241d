"""Reads about a participant's readings for their own status page."""

from __future__ import annotations

from typing import Any

from measurements.models import BloodPressureReading
from measurements.monitoring.counting import adherence_counts


def participant_status_summary(participant) -> dict[str, Any]:
    """Last reading, and the readings that count over the last 7 days against what the protocol
    expects of them: the coordinators' "7 days" figures (`counting.adherence_counts`)."""
    readings = BloodPressureReading.objects.filter(participant=participant, deleted_upstream=False)
    last = (
        readings.order_by("-measured_at")
        .only("measured_at", "systolic", "diastolic", "pulse", "quality_flags")
        .first()
    )
    counts = adherence_counts(participant)
    return {
        "last_reading": last,
        "readings_last_7_days": counts.week_counted,
        "weekly_target": counts.week_expected,
    }
