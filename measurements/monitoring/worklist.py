"""Today's worklist: who needs a coordinator's attention and why, in two queries whatever the
number of participants (the annotated rows, then their open alerts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.timezone import now

from cohorts.models import Participant
from cohorts.scoping import scoped
from measurements.models import Alert

from .selectors import BROKEN_OR_FAILING, ENDED, participants_needing_attention

NO_DATA_DAYS = 3


@dataclass(frozen=True)
class WorklistItem:
    participant: Participant
    reasons: list[str]
    alerts: list[Alert] = field(default_factory=list)


def worklist_items(*, user, limit: int, roles: Iterable[str] | None = None) -> list[WorklistItem]:
    """The first `limit` participants `user` may see (with one of `roles`) needing attention,
    by study, then most open alerts."""
    participants = scoped(Participant.objects.all(), user, roles).select_related("study", "site")
    rows = list(
        participants_needing_attention(participants, no_data_days=NO_DATA_DAYS).order_by(
            "study__name", "-open_alerts", "code"
        )[:limit]
    )
    alerts: dict[int, list[Alert]] = {}
    open_alerts = Alert.objects.filter(resolved_at__isnull=True, participant_id__in=[p.pk for p in rows])
    for alert in scoped(open_alerts, user, roles):
        alerts.setdefault(alert.participant_id, []).append(alert)
    stale = now() - dt.timedelta(days=NO_DATA_DAYS)
    return [_item(p, alerts.get(p.pk, []), stale) for p in rows]


def _item(p: Participant, alerts: list[Alert], stale: dt.datetime) -> WorklistItem:
    reasons = [a.get_kind_display() for a in alerts]
    if p.link_status in BROKEN_OR_FAILING and p.status not in ENDED and not reasons:
        reasons.append(f"Link: {p.get_link_status_display()}")
    no_data_alert = any(a.kind == Alert.Kind.NO_DATA for a in alerts)
    if (p.last_reading_at is None or p.last_reading_at < stale) and not no_data_alert:
        reasons.append("No recent reading")
    if p.week_percent is not None and p.week_percent < p.adherence_target:
        reasons.append(f"7-day adherence {p.week_percent:.0f}%")
    return WorklistItem(participant=p, reasons=reasons, alerts=alerts)
