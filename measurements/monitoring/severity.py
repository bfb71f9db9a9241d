"""How urgent an alert is, and how urgent a participant on the worklist is: one ranking shared by the
worklist (the coordinators' home page) and the Alerts list, computed by the database so that both pages
sort and cut in SQL.

Most urgent first:

0. a BP alert (crisis) open and not acknowledged past its response deadline;
1. a BP alert open and not acknowledged;
2. a BP alert acknowledged today — kept on the worklist, marked acknowledged, until the end of the
   **study's** local day (`Study.default_timezone`): the coordinators' working day, one boundary per
   study, rather than rows vanishing at different hours depending on where each participant lives;
3. the Withings link broken; 4. no data; 5. below the adherence target; 6. any other open alert
(notifications lost, low battery, cuff not synced); 7. nothing open (the Alerts list's closed rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import reduce
from operator import or_
from zoneinfo import ZoneInfo

from django.db.models import Case, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, Least

from cohorts.models import Participant
from measurements.models import Alert

from .selectors import LINK_BROKEN

Kind = Alert.Kind


class Severity:
    OVERDUE, URGENT, ACKNOWLEDGED, LINK_BROKEN, NO_DATA, BELOW_TARGET, OTHER, CLOSED = range(8)
    LABELS = {
        OVERDUE: "Crisis, past deadline",
        URGENT: "Crisis",
        ACKNOWLEDGED: "Crisis, acknowledged",
        LINK_BROKEN: "Link broken",
        NO_DATA: "No data",
        BELOW_TARGET: "Below target",
        OTHER: "Other",
        CLOSED: "Closed",
    }
    CSS = {OVERDUE: "sev-overdue", URGENT: "sev-urgent", ACKNOWLEDGED: "sev-acknowledged"}


#: BP alerts, the most urgent kinds, and how long a coordinator has to acknowledge each. (A "severe,
#: not crisis" kind joins here when the clinical-safety work adds it and per-study deadlines.)
#: Alerts raised under a safety plan carry their own deadline (`Alert.ack_deadline_at`); these apply
#: only to alerts from before the plans.
RESPONSE_DEADLINES: dict[str, dt.timedelta] = {
    Kind.CRISIS: dt.timedelta(hours=4),
    Kind.LOW_BP: dt.timedelta(hours=4),
}
BP_KINDS = tuple(RESPONSE_DEADLINES)
ATTENDED_STATUSES = (Participant.Status.LINKED, Participant.Status.ACTIVE)


def day_start(zone: str, at: dt.datetime) -> dt.datetime:
    tz = ZoneInfo(zone)
    return dt.datetime.combine(at.astimezone(tz).date(), dt.time.min, tzinfo=tz)


def acknowledged_today(zones: Iterable[str], at: dt.datetime) -> Q:
    """Alerts (BP kinds) acknowledged since the start of their study's local day at `at`; `zones`:
    the studies' zones that may occur."""
    since = [Q(study__default_timezone=z, acknowledged_at__gte=day_start(z, at)) for z in sorted(set(zones))]
    return Q(kind__in=BP_KINDS) & reduce(or_, since, Q(pk__in=[]))


def alert_severity(at: dt.datetime, today: Q | None = None) -> Case:
    """The rank of one alert at `at` (`today`: the acknowledged-today condition, for the worklist)."""
    unacknowledged = Q(resolved_at__isnull=True, acknowledged_at__isnull=True)
    fallback = reduce(or_, (Q(kind=k, opened_at__lt=at - d) for k, d in RESPONSE_DEADLINES.items()))
    overdue = Q(ack_deadline_at__lt=at) | (Q(ack_deadline_at__isnull=True) & fallback)
    whens = [
        When(unacknowledged & overdue, then=Value(Severity.OVERDUE)),
        When(unacknowledged & Q(kind__in=BP_KINDS), then=Value(Severity.URGENT)),
    ]
    if today is not None:
        whens.append(When(today, then=Value(Severity.ACKNOWLEDGED)))
    whens += [
        When(resolved_at__isnull=True, kind=Kind.LINK_BROKEN, then=Value(Severity.LINK_BROKEN)),
        When(resolved_at__isnull=True, kind=Kind.NO_DATA, then=Value(Severity.NO_DATA)),
        When(resolved_at__isnull=True, then=Value(Severity.OTHER)),
    ]
    return Case(*whens, default=Value(Severity.CLOSED), output_field=IntegerField())


def worklist_alerts(today: Q) -> Q:
    """The alerts a worklist row shows: the open ones, and BP alerts acknowledged today."""
    return Q(resolved_at__isnull=True) | today


def silent(no_data_days: int, at: dt.datetime) -> Q:
    """No reading for `no_data_days` (on a queryset annotated by `monitoring_annotate`)."""
    stale = at - dt.timedelta(days=no_data_days)
    return Q(status__in=ATTENDED_STATUSES) & (Q(last_reading_at__lt=stale) | Q(last_reading_at__isnull=True))


BELOW_TARGET = Q(status__in=ATTENDED_STATUSES, week_percent__lt=F("adherence_target"))


def participant_severity(*, at: dt.datetime, today: Q, no_data_days: int) -> dict:
    """Annotations for a participant queryset already annotated by `monitoring_annotate` and with
    `adherence_target`: `severity` (its most urgent reason) and `waiting_since` (when its most urgent
    alert opened, to put the longest-waiting first within a rank)."""
    alerts = (
        Alert.objects.filter(worklist_alerts(today), participant_id=OuterRef("pk"))
        .annotate(rank=alert_severity(at, today))
        .order_by("rank", "opened_at")
    )
    own = Case(
        When(LINK_BROKEN, then=Value(Severity.LINK_BROKEN)),
        When(silent(no_data_days, at), then=Value(Severity.NO_DATA)),
        When(BELOW_TARGET, then=Value(Severity.BELOW_TARGET)),
        default=Value(Severity.CLOSED),
        output_field=IntegerField(),
    )
    rank = Subquery(alerts.values("rank")[:1], output_field=IntegerField())
    return {
        "severity": Least(Coalesce(rank, Value(Severity.CLOSED)), own),
        "waiting_since": Subquery(alerts.values("opened_at")[:1]),
    }
