"""What the rules would send over the coming days: hourly ticks replayed inside a transaction that is
rolled back, so the preview counts exactly what tick would queue (each message once, the caps and
quiet hours applied) and writes nothing — not even the wording's first version."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import transaction

from messaging.models import StudyMessaging

from .run import lock, queue_due

STEP = dt.timedelta(hours=1)
SAMPLES_PER_REASON = 2


@dataclass
class Preview:
    zone: str
    start: dt.datetime
    days: list[dt.date]
    reasons: list[str]
    counts: dict[tuple[dt.date, str], int]
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def rows(self) -> list[tuple[dt.date, list[int], int]]:
        """(day, count per reason in ``reasons`` order, day total) for each day."""
        out = []
        for day in self.days:
            counts = [self.counts.get((day, reason), 0) for reason in self.reasons]
            out.append((day, counts, sum(counts)))
        return out


class _Rollback(Exception):
    pass


def rules_preview(*, rules: StudyMessaging, start: dt.datetime, days: int = 7) -> Preview:
    """Hourly ticks from ``start`` (rounded down to the hour) over ``days`` days, as if the rules were
    live from ``start`` (rules not live yet are previewed as they would run)."""
    zone = rules.study.default_timezone
    first = start.replace(minute=0, second=0, microsecond=0)
    counts: Counter[tuple[dt.date, str]] = Counter()
    samples: dict[str, list[str]] = defaultdict(list)
    try:
        with transaction.atomic():
            lock()
            live = rules.live_since if rules.live_since and rules.live_since <= first else first
            StudyMessaging.objects.filter(pk=rules.pk).update(live_since=live)
            rules = StudyMessaging.objects.select_related("study").get(pk=rules.pk)
            for hour in range(days * 24):
                at = first + hour * STEP
                due, renderer = queue_due(at=at, rules=[rules])
                day = at.astimezone(ZoneInfo(zone)).date()
                for c in due:
                    counts[day, c.reason] += 1
                    if len(samples[c.reason]) < SAMPLES_PER_REASON:
                        samples[c.reason].append(renderer.sample(c))
            raise _Rollback
    except _Rollback:
        pass
    return Preview(
        zone=zone,
        start=first,
        days=sorted({(first + hour * STEP).astimezone(ZoneInfo(zone)).date() for hour in range(days * 24)}),
        reasons=sorted({reason for _day, reason in counts}),
        counts=dict(counts),
        samples=dict(samples),
    )
