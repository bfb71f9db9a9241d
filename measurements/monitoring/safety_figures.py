"""The study page's safety figures: how long severe/low-reading alerts waited for acknowledgement
(median and 90th percentile, PostgreSQL's percentile_cont over the interval) and how many went past
their deadline — acknowledged late, or still waiting past it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from measurements.models import Alert

WINDOW = dt.timedelta(days=90)


class Percentile(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class SafetyFigures:
    alerts: int
    acknowledged: int
    median: dt.timedelta | None
    p90: dt.timedelta | None
    past_deadline: int  # acknowledged after the deadline, or not acknowledged and past it
    waiting_past_deadline: int  # of which still waiting now


def safety_figures(alerts: QuerySet[Alert], *, at: dt.datetime) -> SafetyFigures:
    """Over `alerts` (already scoped to the study and the viewer) raised under a safety plan in the
    last 90 days before `at`."""
    waited = ExpressionWrapper(F("acknowledged_at") - F("opened_at"), output_field=DurationField())
    acked = Q(acknowledged_at__isnull=False)
    waiting_late = Q(acknowledged_at__isnull=True, resolved_at__isnull=True, ack_deadline_at__lt=at)
    late = Q(acknowledged_at__gt=F("ack_deadline_at")) | waiting_late
    row = (
        alerts.filter(safety_plan__isnull=False, opened_at__gte=at - WINDOW, opened_at__lte=at)
        .order_by()
        .aggregate(
            alerts=Count("pk"),
            acknowledged=Count("pk", filter=acked),
            median=Percentile(waited, 0.5, filter=acked),
            p90=Percentile(waited, 0.9, filter=acked),
            past_deadline=Count("pk", filter=late),
            waiting_past_deadline=Count("pk", filter=waiting_late),
        )
    )
    return SafetyFigures(**row)


def duration_label(value: dt.timedelta | None) -> str:
    if value is None:
        return "—"
    minutes = round(value.total_seconds() / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"
