"""Today's worklist: who needs a coordinator's attention and why, most urgent first (see `severity`),
in three queries whatever the number of participants (the studies' zones, the ranked rows, then the
alerts they show)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from cohorts.models import Participant, Study
from cohorts.scoping import scoped
from measurements.models import Alert

from .confirmation import confirmation_annotations, confirmation_text
from .display import age, bp_value, local_time
from .selectors import BROKEN_OR_FAILING, ENDED, monitoring_annotate
from .severity import (
    Severity,
    acknowledged_today,
    alert_severity,
    participant_severity,
    worklist_alerts,
)

NO_DATA_DAYS = 3


@dataclass(frozen=True)
class WorklistAlert:
    """One alert as a worklist row shows it: times in the participant's zone, zone named."""

    alert: Alert
    severity: int
    bp_value: str | None
    opened_ago: str
    opened_local: str
    acknowledged_local: str | None
    confirmation: str | None = None  # a re-measurement in the safety plan's window
    deadline_local: str | None = None  # the current holder's deadline (safety plan), study's zone
    flagged: str | None = None  # the reading broke a soft plausibility rule: confirm it

    @property
    def overdue(self) -> bool:
        return self.severity == Severity.OVERDUE


@dataclass(frozen=True)
class WorklistItem:
    participant: Participant
    reasons: list[str]
    alerts: list[WorklistAlert] = field(default_factory=list)
    severity: int = Severity.OTHER
    #: The reasons that are not one of `alerts` (a link, a silence, adherence without an alert).
    other_reasons: list[str] = field(default_factory=list)

    @property
    def severity_label(self) -> str:
        return Severity.LABELS[self.severity]

    @property
    def severity_css(self) -> str:
        return Severity.CSS.get(self.severity, "")


def worklist_items(
    *, user, limit: int, roles: Iterable[str] | None = None, at: dt.datetime | None = None
) -> list[WorklistItem]:
    """The first `limit` participants `user` may see (with one of `roles`) needing attention at `at`,
    most urgent first, the longest waiting first within a rank."""
    at = at or now()
    zones = scoped(Study.objects.all(), user, roles).values_list("default_timezone", flat=True).distinct()
    today = acknowledged_today(list(zones), at)
    participants = scoped(Participant.objects.all(), user, roles).select_related("study", "site")
    target = Coalesce(F("study__protocol__adherence_target_percent"), Value(80))
    annotated = monitoring_annotate(participants.annotate(adherence_target=target), at=at)
    rows = list(
        annotated.annotate(**participant_severity(at=at, today=today, no_data_days=NO_DATA_DAYS))
        .filter(severity__lt=Severity.CLOSED)
        .order_by("severity", F("waiting_since").asc(nulls_last=True), "study__name", "code")[:limit]
    )
    alerts: dict[int, list[Alert]] = {}
    shown = (
        Alert.objects.filter(worklist_alerts(today), participant_id__in=[p.pk for p in rows])
        .annotate(rank=alert_severity(at, today))
        .annotate(**confirmation_annotations())
        .select_related("acknowledged_by", "safety_plan", "study")
        .order_by("rank", "opened_at")
    )
    for alert in scoped(shown, user, roles):
        alerts.setdefault(alert.participant_id, []).append(alert)
    stale = at - dt.timedelta(days=NO_DATA_DAYS)
    return [_item(p, alerts.get(p.pk, []), stale, at) for p in rows]


def _line(alert: Alert, zone: str, at: dt.datetime) -> WorklistAlert:
    return WorklistAlert(
        alert=alert,
        severity=alert.rank,
        bp_value=bp_value(alert),
        opened_ago=age(at - alert.opened_at),
        opened_local=local_time(alert.opened_at, zone),
        acknowledged_local=local_time(alert.acknowledged_at, zone) if alert.acknowledged_at else None,
        confirmation=confirmation_text(alert),
        flagged=alert.detail.get("flagged"),
        deadline_local=(
            local_time(alert.deadline_at, alert.study.default_timezone)
            if alert.deadline_at and not alert.acknowledged_at and alert.resolved_at is None
            else None
        ),
    )


def _item(p: Participant, alerts: list[Alert], stale: dt.datetime, at: dt.datetime) -> WorklistItem:
    open_alerts = [a for a in alerts if a.resolved_at is None]
    extra = []
    if p.link_status in BROKEN_OR_FAILING and p.status not in ENDED and not open_alerts:
        extra.append(f"Link: {p.get_link_status_display()}")
    no_data_alert = any(a.kind == Alert.Kind.NO_DATA for a in open_alerts)
    if (p.last_reading_at is None or p.last_reading_at < stale) and not no_data_alert:
        extra.append("No recent reading")
    if p.week_percent is not None and p.week_percent < p.adherence_target:
        extra.append(f"7-day adherence {p.week_percent:.0f}%")
    reasons = [f"{a.get_kind_display()}{' (acknowledged)' if a.acknowledged_at else ''}" for a in alerts]
    return WorklistItem(
        participant=p,
        reasons=reasons + extra,
        alerts=[_line(a, p.timezone, at) for a in alerts],
        severity=p.severity,
        other_reasons=extra,
    )
