"""Reads about participants that the other apps share."""

from __future__ import annotations

import datetime as dt

from .models import Participant


def participation_start(participant: Participant) -> dt.datetime | None:
    """From when a participant's readings are study data, whatever their source (Withings API or
    CSV export): the study's start date, else the participant's own, as a UTC instant one day early
    (so that no time zone's first morning falls before it). None when neither date is set."""
    day = participant.study.start_date or participant.start_date
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(days=1)
