"""What the study's messaging did over the last 7 days: messages, delivery, and whether the
participants who were reminded kept up better than those who were not (the daily adherence rollup)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils.timezone import now

from cohorts.models import Study
from measurements.models import DailyAdherence
from measurements.monitoring.protocol import WEEK

from .models import Message
from .scheduler.candidates import RULE_REASONS

LEFT = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.FAILED, Message.Status.BOUNCED)
FAILED = (Message.Status.FAILED, Message.Status.BOUNCED)


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


def study_messaging_week(study: Study, *, today: dt.date | None = None) -> MessagingWeek:
    """The 7 complete days before ``today`` (as the coordinators' adherence columns count them)."""
    today = today or now().date()
    first = today - dt.timedelta(days=WEEK)
    since = now() - dt.timedelta(days=7)
    counts = Message.objects.filter(study=study).aggregate(
        sent=Count("pk", filter=Q(status__in=LEFT, sent_at__gte=since)),
        failed=Count("pk", filter=Q(status__in=FAILED, sent_at__gte=since)),
        queued=Count("pk", filter=Q(status=Message.Status.QUEUED)),
    )
    reminded = Exists(
        Message.objects.filter(
            participant_id=OuterRef("participant_id"),
            reason__in=RULE_REASONS,
            local_day__gte=first,
            local_day__lt=today,
        )
    )
    rows = (
        DailyAdherence.objects.filter(study=study, day__gte=first, day__lt=today)
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
