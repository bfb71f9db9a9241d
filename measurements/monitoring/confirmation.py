"""A confirmatory re-measurement: the first valid reading after a severe/low reading, within the safety
plan's window. Staff pages show it beside the first reading — neither is hidden — and say whether it
falls back inside the thresholds. Annotated in SQL (one subquery per column, no query per alert)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import DateTimeField, DecimalField, ExpressionWrapper, OuterRef, Subquery, Value
from django.db.models.fields import DurationField

from measurements.models import Alert, BloodPressureReading

from .adherence import VALID_READINGS


def confirmation_annotations() -> dict:
    """Annotations for an Alert queryset: `confirm_at`, `confirm_systolic`, `confirm_diastolic`."""
    window_end = ExpressionWrapper(
        OuterRef("reading_at")
        + ExpressionWrapper(
            OuterRef("safety_plan__confirm_window_minutes") * Value(dt.timedelta(minutes=1)),
            output_field=DurationField(),
        ),
        output_field=DateTimeField(),
    )
    later = BloodPressureReading.objects.filter(
        VALID_READINGS,
        participant_id=OuterRef("participant_id"),
        measured_at__gt=OuterRef("reading_at"),
        measured_at__lte=window_end,
    ).order_by("measured_at", "pk")
    decimal = DecimalField(max_digits=6, decimal_places=2)
    return {
        "confirm_at": Subquery(later.values("measured_at")[:1], output_field=DateTimeField()),
        "confirm_systolic": Subquery(later.values("systolic")[:1], output_field=decimal),
        "confirm_diastolic": Subquery(later.values("diastolic")[:1], output_field=decimal),
    }


def confirmation_text(alert: Alert) -> str | None:
    """ "Re-measured 150/95 mmHg 6 min later: below the threshold" (on an annotated alert), or None."""
    at = getattr(alert, "confirm_at", None)
    if at is None or alert.reading_at is None or alert.safety_plan_id is None:
        return None
    systolic: Decimal = alert.confirm_systolic
    diastolic: Decimal = alert.confirm_diastolic
    plan = alert.safety_plan
    minutes = int((at - alert.reading_at).total_seconds() // 60)
    if alert.kind == Alert.Kind.LOW_BP:
        cleared = not plan.is_low(systolic)
        verdict = "back above the low threshold" if cleared else "still low"
    else:
        cleared = not plan.is_severe(systolic, diastolic)
        verdict = "below the threshold" if cleared else "still above the threshold"
    return f"Re-measured {systolic:.0f}/{diastolic:.0f} mmHg {minutes} min later: {verdict}"
