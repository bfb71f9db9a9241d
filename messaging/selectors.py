"""What the study's messaging did over the last 7 days: messages, delivery, and whether the
participants who were reminded kept up better than those who were not (the daily adherence rollup).

"7 days" is each participant's own: the seven complete local days before their today, exactly as the
adherence columns count them (``measurements.monitoring.counting``) — a message counts in the week
of the participant-local day it was sent, a reminder in the week of the local day it was due."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, DateField, Exists, F, Func, OuterRef, Q, Sum
from django.db.models.functions import Cast
from django.utils.timezone import now

from cohorts.models import Study
from measurements.models import DailyAdherence
from measurements.monitoring.counting import local_week_bounds

from .models import Message
from .scheduler.candidates import RULE_REASONS

LEFT = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.FAILED, Message.Status.BOUNCED)
FAILED = (Message.Status.FAILED, Message.Status.BOUNCED)
REACHED = (Message.Status.SENT, Message.Status.DELIVERED)


@dataclass(frozen=True)
class Group:
    participants: int
    counted: int
    expected: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.counted / self.expected if self.expected else None


@dataclass(frozen=True)
class MessagingWeek:
    sent: int
    failed: int
    queued: int
    reminded: Group
    not_reminded: Group

    @property
    def delivery_percent(self) -> float | None:
        """Messages that left and did not fail or bounce (SMS delivered or not yet reported, e-mail
        accepted by the server), of all that left."""
        return 100.0 * (self.sent - self.failed) / self.sent if self.sent else None


def study_messaging_week(study: Study, *, at: dt.datetime | None = None) -> MessagingWeek:
    """The 7 complete days before each participant's local today at ``at`` (default now)."""
    at = at or now()
    first, today = local_week_bounds(at)
    sent_day = Cast(Func(F("participant__timezone"), F("sent_at"), function="timezone"), DateField())
    in_week = Q(sent_day__gte=F("week_first"), sent_day__lt=F("week_today"))
    counts = (
        Message.objects.filter(study=study)
        .annotate(week_first=first, week_today=today, sent_day=sent_day)
        .aggregate(
            sent=Count("pk", filter=Q(status__in=LEFT) & in_week),
            failed=Count("pk", filter=Q(status__in=FAILED) & in_week),
            queued=Count("pk", filter=Q(status=Message.Status.QUEUED)),
        )
    )
    reminded = Exists(
        Message.objects.filter(
            participant_id=OuterRef("participant_id"),
            reason__in=RULE_REASONS,
            status__in=REACHED,  # a reminder that expired, failed or was refused reminded nobody
            local_day__gte=OuterRef("week_first"),
            local_day__lt=OuterRef("week_today"),
        )
    )
    rows = (
        DailyAdherence.objects.filter(study=study)
        .annotate(week_first=first, week_today=today)
        .filter(day__gte=F("week_first"), day__lt=F("week_today"))
        .annotate(reminded=reminded)
        .values("reminded")
        .annotate(
            people=Count("participant_id", distinct=True), counted=Sum("counted"), expected=Sum("expected")
        )
    )
    groups = {
        row["reminded"]: Group(row["people"], row["counted"] or 0, row["expected"] or 0) for row in rows
    }
    empty = Group(0, 0, 0)
    return MessagingWeek(
        sent=counts["sent"],
        failed=counts["failed"],
        queued=counts["queued"],
        reminded=groups.get(True, empty),
        not_reminded=groups.get(False, empty),
    )
