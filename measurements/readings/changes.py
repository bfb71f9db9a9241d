"""What ingestion calls after it wrote readings: refresh the touched days, check for crises."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from measurements.monitoring.adherence import adherence_refresh_instants
from measurements.monitoring.alerts import alerts_check_readings


def readings_changed(
    *,
    participant_id: int,
    instants: Iterable[dt.datetime],
    new_values: Iterable[tuple[dt.datetime, Decimal, Decimal, bool, int]] = (),
) -> None:
    """`instants`: every measured_at written, moved or deleted; `new_values`: the new or edited
    readings as (measured_at, systolic, diastolic, checked, quality_flags) — `checked`: the safety plan
    checks it (not maybe another person, no hard plausibility flag; soft flags are checked)."""
    adherence_refresh_instants(participant_id=participant_id, instants=instants)
    alerts_check_readings(
        participant_id=participant_id,
        readings=[(at, sys, dia, flags) for at, sys, dia, checked, flags in new_values if checked],
    )
