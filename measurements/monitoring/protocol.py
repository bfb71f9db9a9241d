"""Protocol rules as plain functions: a participant's protocol period, the window of a local time,
what one local day expects, and which protocol version a day ran under. No queries here except
`protocol_for_study` and `protocol_history`."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cohorts.models import Participant, Study
from measurements.classification import EVENING, MORNING, OTHER
from measurements.models import StudyProtocol, StudyProtocolVersion
from measurements.models.monitoring import ProtocolRules

MIDNIGHT = dt.time(0, 0)
#: Participants the protocol applies to (expected readings, alerts). Withdrawn participants are
#: held to it until the day before withdrawal, for adherence only.
MONITORED_STATUSES = frozenset({Participant.Status.LINKED, Participant.Status.ACTIVE})
PERIOD_STATUSES = MONITORED_STATUSES | {Participant.Status.COMPLETED, Participant.Status.WITHDRAWN}


def protocol_for_study(study_id: int) -> StudyProtocol:
    """The study's protocol, or the default one (unsaved) when none was configured."""
    protocol = StudyProtocol.objects.filter(study_id=study_id).first()
    return protocol or StudyProtocol(study_id=study_id)


@dataclass(frozen=True)
class ProtocolHistory:
    """A study's protocol rules over time: each version applies from its `effective_from` until the
    next one's. A study without recorded versions has one: its protocol (or the default) throughout."""

    versions: tuple[ProtocolRules, ...]
    starts: tuple[dt.date, ...]

    def for_day(self, day: dt.date) -> ProtocolRules:
        return self.versions[max(bisect_right(self.starts, day) - 1, 0)]

    def split(self, days: list[dt.date]) -> list[tuple[ProtocolRules, list[dt.date]]]:
        """`days` (sorted) grouped by the version in force, in order."""
        groups: list[tuple[ProtocolRules, list[dt.date]]] = []
        for day in days:
            rules = self.for_day(day)
            if groups and groups[-1][0] is rules:
                groups[-1][1].append(day)
            else:
                groups.append((rules, [day]))
        return groups

    def ranges(self) -> list[tuple[ProtocolRules, dt.date, dt.date | None]]:
        """(version, first day, last day or None) of each version."""
        ends = [start - dt.timedelta(days=1) for start in self.starts[1:]]
        return list(zip(self.versions, self.starts, [*ends, None], strict=True))


def history_of(current: ProtocolRules, versions: list[StudyProtocolVersion]) -> ProtocolHistory:
    """The recorded `versions`, else `current` (the study's protocol or the default) throughout."""
    if not versions:
        return ProtocolHistory((current,), (StudyProtocolVersion.BEGINNING,))
    ordered = sorted(versions, key=lambda v: v.effective_from)
    starts = (StudyProtocolVersion.BEGINNING, *(v.effective_from for v in ordered[1:]))
    return ProtocolHistory(tuple(ordered), starts)


def protocol_history(study_id: int) -> ProtocolHistory:
    versions = list(StudyProtocolVersion.objects.filter(study_id=study_id))
    return history_of(versions[0] if versions else protocol_for_study(study_id), versions)


def protocol_versions_described(study_id: int) -> list[dict]:
    """The study's protocol versions as an export package names them (JSON-ready): the rules that
    decided each day's expected and counted readings, and the days each version applied to."""
    history = protocol_history(study_id)
    described = []
    for rules, first, last in history.ranges():
        recorded = version_of(rules)
        described.append(
            {
                "version": recorded.number if recorded else None,
                "effective_from": None if first == StudyProtocolVersion.BEGINNING else first.isoformat(),
                "effective_until": last.isoformat() if last else None,
                "expected_per_day": rules.expected_per_day,
                **{
                    name: value.isoformat(timespec="minutes") if isinstance(value, dt.time) else value
                    for name, value in rules.rules().items()
                },
            }
        )
    return described


def version_of(rules: ProtocolRules) -> StudyProtocolVersion | None:
    """The recorded version `rules` are (None: a study's protocol without recorded versions)."""
    return rules if isinstance(rules, StudyProtocolVersion) else None


def _in(t: dt.time, start: dt.time, end: dt.time) -> bool:
    return start <= t and (end == MIDNIGHT or t < end)


def window_of(local: dt.datetime | dt.time, protocol: ProtocolRules) -> str:
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
#: "The last 7 days": the seven complete participant-local days before their today.
WEEK = 7


def day_expected(protocol: ProtocolRules, period: Period, day: dt.date) -> int:
    """Readings the protocol expects on a participant-local day: none outside the period."""
    return protocol.expected_per_day if period.day_number(day) is not None else 0


def participant_start(participant: Participant, study: Study) -> dt.date | None:
    """The participant's first protocol day: their own start date, else the study's, but never before
    the local day they enrolled (readings back-filled from the study start are data, not adherence)."""
    tz = ZoneInfo(participant.timezone)
    enrolled = participant.enrolled_at.astimezone(tz).date() if participant.enrolled_at else None
    start = participant.start_date or study.start_date or enrolled
    if start is not None and enrolled is not None:
        start = max(start, enrolled)
    return start


def participant_period(participant: Participant, protocol: ProtocolRules, study: Study) -> Period:
    if participant.status not in PERIOD_STATUSES:
        return NO_PERIOD
    tz = ZoneInfo(participant.timezone)
    start = participant_start(participant, study)
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
