"""The protocol windows the rules prompt in, read through this one function.

Protocol versions (effective-from dates): the version in force on the study's day at the instant is
the one used; the rest of the scheduler only sees ``StudyWindows``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from measurements.classification import EVENING, MORNING
from measurements.models import StudyProtocol, StudyProtocolVersion
from measurements.monitoring.protocol import history_of

MIDNIGHT = dt.time(0, 0)


@dataclass(frozen=True)
class Window:
    name: str
    start: dt.time
    end: dt.time  # 00:00 means midnight

    def contains(self, t: dt.time) -> bool:
        return self.start <= t and (self.end == MIDNIGHT or t < self.end)


@dataclass(frozen=True)
class StudyWindows:
    windows: tuple[Window, ...]
    duration_days: int | None
    day_end: dt.time  # when a protocol day's last window closes (00:00: midnight)


def study_windows(study_ids: Iterable[int], at: dt.datetime) -> dict[int, StudyWindows]:
    """Each study's windows in force at ``at`` (the default protocol where none is configured).
    An HBPM protocol prompts in its morning and evening windows; an "N per day" one once, at the
    start of the morning window, and its day ends at midnight."""
    ids = list(study_ids)
    saved = {p.study_id: p for p in StudyProtocol.objects.filter(study_id__in=ids).select_related("study")}
    versions: dict[int, list[StudyProtocolVersion]] = {}
    for version in StudyProtocolVersion.objects.filter(study_id__in=ids):
        versions.setdefault(version.study_id, []).append(version)
    result: dict[int, StudyWindows] = {}
    for study_id in ids:
        current = saved.get(study_id) or StudyProtocol(study_id=study_id)
        zone = current.study.default_timezone if study_id in saved else "UTC"
        p = history_of(current, versions.get(study_id, [])).for_day(at.astimezone(ZoneInfo(zone)).date())
        morning = Window(MORNING, p.morning_start, p.morning_end)
        if p.kind == StudyProtocol.Kind.HBPM:
            windows: tuple[Window, ...] = (morning, Window(EVENING, p.evening_start, p.evening_end))
            day_end = p.evening_end
        else:
            windows, day_end = (morning,), MIDNIGHT
        result[study_id] = StudyWindows(windows, p.duration_days, day_end)
    return result
