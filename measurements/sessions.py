"""Measurement sessions: a participant's readings less than a gap apart (`READING_SESSION_GAP_MINUTES`,
default 10) form one session — a BPM Connect triple-mode burst, the duplicates a protocol asks for a
minute apart. The gap is measured from the session's previous reading (a chain).

Which readings take part: those of a participant that are not deleted upstream and not flagged as
maybe another person (attrib 1); CSV copies of API readings are left out before (they stay one
reading, as everywhere). Implausible readings belong to their session but are not in its mean.

A session's id is the participant's code and the UTC instant of its first reading
(``P-001-20240301T070000Z``): readable, stable while no earlier reading joins the session, and the
same in every export format. `SessionTracker` assigns ids to readings streamed in (participant,
measured_at) order — the exports' order — in Python; `session_start_sql` is the same rule as SQL window
functions over the same order (the COPY export); tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

ID_FORMAT = "%Y%m%dT%H%M%SZ"
MEAN_PLACES = Decimal("0.1")


def session_gap() -> dt.timedelta:
    return dt.timedelta(minutes=settings.READING_SESSION_GAP_MINUTES)


def session_id(code: str, start: dt.datetime) -> str:
    return f"{code}-{start.astimezone(dt.UTC).strftime(ID_FORMAT)}"


def in_sessions(*, deleted_upstream: bool, ambiguous_user: bool) -> bool:
    return not deleted_upstream and not ambiguous_user


def mean(total: Decimal, count: int) -> Decimal | None:
    """A session's (or an average's) mean, to 0.1 mmHg, half up; None without readings."""
    if not count:
        return None
    return (Decimal(total) / count).quantize(MEAN_PLACES, rounding=ROUND_HALF_UP)


@dataclass
class Session:
    participant: str
    start: dt.datetime
    end: dt.datetime
    readings: int = 0  # all readings of the session
    averaged: int = 0  # the plausible ones, in the means
    systolic: Decimal = field(default_factory=Decimal)
    diastolic: Decimal = field(default_factory=Decimal)
    pulse: Decimal = field(default_factory=Decimal)
    pulses: int = 0

    @property
    def id(self) -> str:
        return session_id(self.participant, self.start)

    def add(self, measured_at: dt.datetime, systolic, diastolic, pulse, plausible: bool) -> None:
        self.end = measured_at
        self.readings += 1
        if not plausible or systolic is None or diastolic is None:
            return
        self.averaged += 1
        self.systolic += systolic
        self.diastolic += diastolic
        if pulse is not None:
            self.pulse += pulse
            self.pulses += 1


class SessionTracker:
    """Session ids for readings fed in (participant, measured_at) order; `closed` collects each
    finished session when `keep` is set (the sessions file)."""

    def __init__(self, *, gap: dt.timedelta | None = None, keep: bool = False):
        self.gap = gap if gap is not None else session_gap()
        self.keep = keep
        self.current: Session | None = None
        self.closed: list[Session] = []

    def feed(
        self,
        *,
        participant: str,
        measured_at: dt.datetime,
        systolic=None,
        diastolic=None,
        pulse=None,
        plausible: bool = True,
        eligible: bool = True,
    ) -> str | None:
        """The reading's session id (None when it takes no part in sessions)."""
        if not eligible:
            return None
        session = self.current
        if session is None or session.participant != participant or measured_at - session.end > self.gap:
            self._close()
            session = self.current = Session(participant, measured_at, measured_at)
        session.add(measured_at, systolic, diastolic, pulse, plausible)
        return session.id

    def _close(self) -> None:
        if self.current is not None and self.keep:
            self.closed.append(self.current)
        self.current = None

    def finish(self) -> list[Session]:
        self._close()
        closed, self.closed = self.closed, []
        return closed

    def drain(self) -> list[Session]:
        """The sessions finished so far (the current one stays open)."""
        closed, self.closed = self.closed, []
        return closed


def session_start_sql(*, participant: str, at: str, order: str, eligible: str) -> tuple[str, str]:
    """Two nested SELECT-list expressions (the second over the first's output column ``session_new``)
    giving each eligible row its session's first instant: ``session_new`` marks a row that starts a
    session (no eligible reading of the participant within the gap before it), ``session_start`` is
    the latest start at or before the row. The gap is written in as a literal (an integer setting)."""
    gap = f"interval '{int(session_gap().total_seconds())} seconds'"
    window = f"PARTITION BY {participant} ORDER BY {at}, {order}"
    previous = (
        f"max(CASE WHEN {eligible} THEN {at} END) OVER ({window} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    new = f"({eligible}) AND ({previous} IS NULL OR {at} - {previous} > {gap})"
    start = (
        f"CASE WHEN {eligible} THEN max(CASE WHEN session_new THEN {at} END) "
        f"OVER ({window} ROWS UNBOUNDED PRECEDING) END"
    )
    return new, start
