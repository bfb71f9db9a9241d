"""What a participant should do next, in words: the protocol's routine and the days it runs.

Only reads the protocol (`protocol_for_study`, `participant_period`): the windows and counts are the
ones adherence is measured against, never restated here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.formats import date_format
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from measurements.models import StudyProtocol

from .protocol import MIDNIGHT, participant_period, protocol_for_study


@dataclass(frozen=True)
class NextSteps:
    routine: str | None  # None once the measuring days are over
    when: str | None


def _clock(t: dt.time) -> str:
    return _("midnight") if t == MIDNIGHT else t.strftime("%H:%M")


def _day(day: dt.date) -> str:
    return date_format(day, pgettext("a day in a participant's next steps (PHP-style date format)", "l j F"))


def protocol_routine(protocol: StudyProtocol) -> str:
    """ "Take 2 readings each morning between 04:00 and 12:00, and 2 each evening …"."""
    if protocol.kind == StudyProtocol.Kind.DAILY:
        n = protocol.readings_per_day
        return ngettext("Take %(n)d reading each day.", "Take %(n)d readings each day.", n) % {"n": n}
    n = protocol.readings_per_window
    return ngettext(
        "Take %(n)d reading each morning between %(ms)s and %(me)s, and %(n)d each evening between "
        "%(es)s and %(ee)s.",
        "Take %(n)d readings each morning between %(ms)s and %(me)s, and %(n)d each evening between "
        "%(es)s and %(ee)s.",
        n,
    ) % {
        "n": n,
        "ms": _clock(protocol.morning_start),
        "me": _clock(protocol.morning_end),
        "es": _clock(protocol.evening_start),
        "ee": _clock(protocol.evening_end),
    }


def _last_window_end(protocol: StudyProtocol) -> dt.time | None:
    """When today's last window closes (None: at midnight). Windows are [start, end), 00:00 = midnight."""
    if protocol.kind == StudyProtocol.Kind.DAILY or protocol.evening_end == MIDNIGHT:
        return None
    return max(protocol.morning_end, protocol.evening_end)


def _first_day(protocol: StudyProtocol, start: dt.date, local_now: dt.datetime) -> dt.date:
    """The first day with a window still open: the period's start, or tomorrow if today's are over."""
    today = local_now.date()
    if start > today:
        return start
    closes = _last_window_end(protocol)
    if closes is not None and local_now.time() >= closes:
        return today + dt.timedelta(days=1)
    return today


def participant_next_steps(participant, *, at: dt.datetime | None = None) -> NextSteps:
    protocol = protocol_for_study(participant.study_id)
    period = participant_period(participant, protocol, participant.study)
    routine = protocol_routine(protocol)
    if period.start is None:
        return NextSteps(routine, None)
    local_now = (at or now()).astimezone(ZoneInfo(participant.timezone))
    today = local_now.date()
    first = _first_day(protocol, period.start, local_now)
    if period.end is not None and first > period.end:
        return NextSteps(None, _("The measuring days ended on %(end)s.") % {"end": _day(period.end)})
    if period.start < today:  # already under way
        if period.end is None:
            return NextSteps(routine, None)
        return NextSteps(routine, _("Keep going until %(end)s.") % {"end": _day(period.end)})
    if first == today:
        start = _("Start today, %(day)s") % {"day": _day(first)}
    elif first == today + dt.timedelta(days=1):
        start = _("Start tomorrow, %(day)s") % {"day": _day(first)}
    else:
        start = _("Start on %(day)s") % {"day": _day(first)}
    if period.end is None:
        return NextSteps(routine, start + ".")
    until = _("%(start)s, and keep going until %(end)s.")
    return NextSteps(routine, until % {"start": start, "end": _day(period.end)})


def next_steps_context(participant) -> dict[str, Any]:
    """For the participant's status page (registered as a cohorts status provider)."""
    return {"next_steps": participant_next_steps(participant)}
