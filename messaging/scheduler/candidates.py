"""What the rules decide, and the rules themselves for one participant (the reference the set-based
SQL in ``sql.py`` must agree with; tests compare the two).

A message is decided only outside the participant's quiet hours: one due during them (a prompt at
04:00, a link that broke at 23:00) is created at the first tick after quiet hours end, while it is
still relevant — a prompt only while its window is open (so a window that closes inside quiet hours
gets none), a reminder while its condition holds. Rows therefore never wait: ``due_at`` is the tick.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cohorts.models import Participant, ParticipantContact
from messaging.models import Reason

from .windows import MIDNIGHT, StudyWindows

Channel = ParticipantContact.Channel
ELIGIBLE_STATUSES = (Participant.Status.LINKED, Participant.Status.ACTIVE)
LINKED = Participant.LinkStatus.ACTIVE
BROKEN_LINK = (Participant.LinkStatus.NEEDS_REAUTH, Participant.LinkStatus.REVOKED)
#: Lower first when the caps leave room for fewer messages than are due.
PRIORITY: dict[str, int] = {
    Reason.RELINK: 1,
    Reason.NO_DATA: 2,
    Reason.SYNC_NUDGE: 2,
    Reason.LOW_BATTERY: 3,
    Reason.PROMPT: 4,
}
RULE_REASONS = tuple(PRIORITY)
#: Only the reminders count toward the caps. Everything else the participant gets — a safety message
#: after a severe reading, their private link, a withdrawal confirmation, replies to HELP/STOP/START,
#: a coordinator's one-off — never takes a reminder's place.
CAPPED = tuple(str(reason) for reason in RULE_REASONS)
CAP_DAYS = 7


@dataclass(frozen=True)
class Candidate:
    participant_id: int
    study_id: int
    code: str
    reason: str
    dedupe_key: str
    channel: str
    language: str
    local_day: dt.date
    window: str = ""
    window_start: dt.time | None = None
    window_end: dt.time | None = None
    days: int | None = None

    @property
    def sort_key(self) -> tuple[int, str]:
        return PRIORITY[self.reason], self.dedupe_key


@dataclass(frozen=True)
class Rules:
    """A study's reminder rules as the decision needs them (from StudyMessaging)."""

    prompts: bool
    no_data_reminders: bool
    no_data_days: int
    sync_grace_hours: int
    relink_reminders: bool
    low_battery_reminders: bool
    quiet_start: dt.time
    quiet_end: dt.time
    max_per_day: int
    max_per_week: int


@dataclass(frozen=True)
class State:
    """One participant as of the instant: what the rules read."""

    participant_id: int
    study_id: int
    code: str
    timezone: str
    start_date: dt.date | None
    end_date: dt.date | None
    link_status: str
    link_status_changed_at: dt.datetime | None
    channel: str | None
    language: str
    last_reading_at: dt.datetime | None
    last_sync_at: dt.datetime | None
    low_battery_device: str | None
    low_battery_since: dt.datetime | None


def pick_channel(contact: ParticipantContact) -> str | None:
    """The preferred channel if it can be used, else the other one, else none."""
    usable: dict[str, bool] = {
        Channel.SMS: bool(contact.phone) and contact.sms_opted_out_at is None,
        Channel.EMAIL: bool(contact.email) and contact.email_opted_out_at is None,
    }
    order = [contact.preferred_channel] + [c for c in usable if c != contact.preferred_channel]
    return next((str(c) for c in order if usable.get(c, False)), None)


def in_quiet_hours(t: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end


def stamp(instant: dt.datetime) -> str:
    """An instant in a dedupe key, to the microsecond (as the SQL's to_char writes it)."""
    return instant.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")


def _on_protocol(day: dt.date, s: State, w: StudyWindows) -> bool:
    if s.start_date is None or day < s.start_date:
        return False
    if w.duration_days is not None and day >= s.start_date + dt.timedelta(days=w.duration_days):
        return False
    return s.end_date is None or day <= s.end_date


def _protocol_over(day: dt.date, s: State, w: StudyWindows) -> bool:
    if s.end_date is not None and day > s.end_date:
        return True
    return (
        s.start_date is not None
        and w.duration_days is not None
        and day >= s.start_date + dt.timedelta(days=w.duration_days)
    )


def _local_instant(day: dt.date, t: dt.time, zone: ZoneInfo) -> dt.datetime:
    """A participant-local wall-clock time as an instant (00:00 as a day end means the next midnight)."""
    return dt.datetime.combine(day, t, tzinfo=zone)


def participant_candidates(s: State, rules: Rules, windows: StudyWindows, at: dt.datetime) -> list[Candidate]:
    """Every message the rules make due for this participant at ``at``, before caps and dedupe."""
    zone = ZoneInfo(s.timezone)
    local = at.astimezone(zone)
    today, now_t = local.date(), local.time().replace(tzinfo=None)
    if s.channel is None or in_quiet_hours(now_t, rules.quiet_start, rules.quiet_end):
        return []

    def make(reason: str, key: str, **extra) -> Candidate:
        return Candidate(
            s.participant_id, s.study_id, s.code, reason, key, s.channel or "", s.language, today, **extra
        )

    out: list[Candidate] = []
    if rules.prompts and _on_protocol(today, s, windows):
        for w in windows.windows:
            opened = _local_instant(today, w.start, zone)
            already = s.last_reading_at is not None and s.last_reading_at >= opened
            if w.contains(now_t) and not already:
                key = f"prompt:{today.isoformat()}:{w.name}"
                out.append(make(Reason.PROMPT, key, window=w.name, window_start=w.start, window_end=w.end))
    # Only a working link lets readings reach the portal: while it is broken the re-link message
    # speaks, and "no readings" would be a false alarm.
    if rules.no_data_reminders and s.start_date is not None and s.link_status == LINKED:
        graced = (at - dt.timedelta(hours=rules.sync_grace_hours)).astimezone(zone)
        g_day, g_t = graced.date(), graced.time().replace(tzinfo=None)
        day = (
            g_day if windows.day_end != MIDNIGHT and g_t >= windows.day_end else g_day - dt.timedelta(days=1)
        )
        closed = _local_instant(
            day + dt.timedelta(days=1 if windows.day_end == MIDNIGHT else 0), windows.day_end, zone
        )
        first_missing = s.start_date
        if s.last_reading_at is not None:
            first_missing = max(
                first_missing, s.last_reading_at.astimezone(zone).date() + dt.timedelta(days=1)
            )
        missed = (day - first_missing).days + 1
        if _on_protocol(day, s, windows) and missed >= rules.no_data_days:
            synced = s.last_sync_at is not None and s.last_sync_at >= closed
            reason = Reason.NO_DATA if synced else Reason.SYNC_NUDGE
            out.append(make(reason, f"{reason}:{first_missing.isoformat()}", days=missed))
    if _protocol_over(today, s, windows):
        return out
    if rules.relink_reminders and s.link_status in BROKEN_LINK and s.link_status_changed_at is not None:
        out.append(make(Reason.RELINK, f"relink:{stamp(s.link_status_changed_at)}"))
    if rules.low_battery_reminders and s.low_battery_device and s.low_battery_since is not None:
        key = f"low_battery:{s.low_battery_device[:64]}:{stamp(s.low_battery_since)}"
        out.append(make(Reason.LOW_BATTERY, key))
    return out


def apply_caps(
    candidates: list[Candidate], *, today_count: int, week_count: int, rules: Rules
) -> list[Candidate]:
    """Highest priority first, as many as the daily and weekly caps leave room for."""
    room = max(0, min(rules.max_per_day - today_count, rules.max_per_week - week_count))
    return sorted(candidates, key=lambda c: c.sort_key)[:room]
