"""Protocol rules as plain functions: a participant's protocol period, the window of a local time,
and what one local day expects. No queries here except `protocol_for_study`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cohorts.models import Participant, Study
from measurements.classification import EVENING, MORNING, OTHER
from measurements.models import StudyProtocol

MIDNIGHT = dt.time(0, 0)
#: Participants the protocol applies to (expected readings, alerts). Withdrawn participants are
#: held to it until the day before withdrawal, for adherence only.
MONITORED_STATUSES = frozenset({Participant.Status.LINKED, Participant.Status.ACTIVE})
PERIOD_STATUSES = MONITORED_STATUSES | {Participant.Status.COMPLETED, Participant.Status.WITHDRAWN}


def protocol_for_study(study_id: int) -> StudyProtocol:
    """The study's protocol, or the default one (unsaved) when none was configured."""
    protocol = StudyProtocol.objects.filter(study_id=study_id).first()
    return protocol or StudyProtocol(study_id=study_id)


def _in(t: dt.time, start: dt.time, end: dt.time) -> bool:
    return start <= t and (end == MIDNIGHT or t < end)


def window_of(local: dt.datetime | dt.time, protocol: StudyProtocol) -> str:
    """morning/evening/other of a participant-local wall-clock time; windows are [start, end)."""
    t = local.time() if isinstance(local, dt.datetime) else local
    t = t.replace(tzinfo=None)
    if _in(t, protocol.morning_start, protocol.morning_end):
        return MORNING
    if _in(t, protocol.evening_start, protocol.evening_end):
        return EVENING
    return OTHER


@dataclass(frozen=True)
class Period:
    """The participant-local days [start, end] the protocol expects readings on (end None: open)."""

    start: dt.date | None
    end: dt.date | None

    def day_number(self, day: dt.date) -> int | None:
        if self.start is None or day < self.start or (self.end is not None and day > self.end):
            return None
        return (day - self.start).days + 1

    def days_through(self, last: dt.date) -> list[dt.date]:
        if self.start is None:
            return []
        stop = min(last, self.end) if self.end is not None else last
        return [self.start + dt.timedelta(days=i) for i in range((stop - self.start).days + 1)]


NO_PERIOD = Period(None, None)
WEEK = 7


def day_expected(protocol: StudyProtocol, period: Period, day: dt.date) -> int:
    """Readings the protocol expects on a participant-local day: none outside the period."""
    return protocol.expected_per_day if period.day_number(day) is not None else 0


def week_start(today: dt.date) -> dt.date:
    """First of "the last 7 days": the seven complete days before `today`."""
    return today - dt.timedelta(days=WEEK)


def week_expected(*, protocol: StudyProtocol, period: Period, today: dt.date) -> int:
    """The weekly target: readings expected over the seven complete days before `today` (what the
    coordinators' "7 days" column sums from the rollup, whose rows hold `day_expected`)."""
    first = week_start(today)
    return sum(day_expected(protocol, period, first + dt.timedelta(days=i)) for i in range(WEEK))


def participant_period(participant: Participant, protocol: StudyProtocol, study: Study) -> Period:
    if participant.status not in PERIOD_STATUSES:
        return NO_PERIOD
    tz = ZoneInfo(participant.timezone)
    start = participant.start_date or study.start_date
    if start is None and participant.enrolled_at is not None:
        start = participant.enrolled_at.astimezone(tz).date()
    if start is None:
        return NO_PERIOD
    ends = [participant.end_date, study.end_date]
    if protocol.duration_days:
        ends.append(start + dt.timedelta(days=protocol.duration_days - 1))
    if participant.status == Participant.Status.WITHDRAWN and participant.withdrawn_at is not None:
        ends.append(participant.withdrawn_at.astimezone(tz).date() - dt.timedelta(days=1))
    known = [e for e in ends if e is not None]
    end = min(known) if known else None
    if end is not None and end < start:
        return NO_PERIOD
    return Period(start, end)


def local_day(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def day_bounds(first: dt.date, last: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants [start of `first`, start of the day after `last`) in zone `tz` (DST-aware)."""
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
