"""The reminder caps count reminders only: a safety message after a severe reading (and the private
link, a withdrawal confirmation, HELP/STOP/START replies, a coordinator's one-off) never takes a due
reminder's place — in the set-based statement and the per-participant path alike."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from cohorts.models import Participant
from messaging.models import Message, Reason, StudyMessaging
from messaging.scheduler.candidates import RULE_REASONS, Candidate
from messaging.scheduler.naive import decide_per_participant, rules_of
from messaging.scheduler.sql import decide_sql
from messaging.scheduler.windows import study_windows

from .rules_support import live_study, local, log_rows, participant, tick

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 23)
LIVE = dt.datetime(2026, 3, 22, tzinfo=dt.UTC)
BERLIN = "Europe/Berlin"
MORNING = local("2026-03-24 08:00", BERLIN)
NOT_REMINDERS = [r for r in Reason if r not in RULE_REASONS]


def logged(p: Participant, reason: str, key: str, at: dt.datetime) -> None:
    """A message already sent to `p` at `at` (its local day is the cap's day)."""
    Message.objects.create(
        study_id=p.study_id,
        participant=p,
        reason=reason,
        dedupe_key=key,
        channel="sms",
        status=Message.Status.SENT,
        local_day=at.astimezone(ZoneInfo(p.timezone)).date(),
        due_at=at,
        sent_at=at,
    )


def both_decisions(at: dt.datetime) -> list[Candidate]:
    """What the SQL statement decides, after checking the per-participant path decides the same."""
    rules = list(StudyMessaging.objects.filter(live_since__lte=at))
    windows = study_windows([r.study_id for r in rules], at)
    by_sql = decide_sql(at=at, windows=windows)
    by_participant = decide_per_participant(
        at=at, windows=windows, rules={r.study_id: rules_of(r) for r in rules}
    )
    assert by_sql == by_participant
    return by_sql


def test_not_reminders_are_every_reason_but_the_rules():
    assert {str(r) for r in NOT_REMINDERS} == {
        "safety", "status_link", "withdrawal", "one_off", "help", "opt_out", "opt_in",
    }  # fmt: skip


def test_a_participant_who_got_a_safety_message_today_still_gets_their_due_reminder():
    study = live_study(live_since=LIVE, max_per_day=1, max_per_week=1)
    p = participant(study, "P-1", BERLIN, start=DAY)
    logged(p, Reason.SAFETY, "safety:1", local("2026-03-24 07:10", BERLIN))  # today, before the prompt

    due = both_decisions(MORNING)
    assert [(c.participant_id, c.dedupe_key) for c in due] == [(p.pk, "prompt:2026-03-24:morning")]
    tick(MORNING)
    assert [r[2] for r in log_rows()] == ["safety:1", "prompt:2026-03-24:morning"]


def test_no_message_but_a_reminder_uses_up_the_caps():
    """Every non-reminder reason at once, today and earlier this week, against caps of 1 a day and
    1 a week: the prompt still goes out."""
    study = live_study(live_since=LIVE, max_per_day=1, max_per_week=1)
    p = participant(study, "P-1", BERLIN, start=DAY)
    for i, reason in enumerate(NOT_REMINDERS):
        logged(p, reason, f"{reason}:today", local("2026-03-24 07:30", BERLIN))
        logged(p, reason, f"{reason}:earlier", local(f"2026-03-2{i % 3 + 1} 12:00", BERLIN))

    due = both_decisions(MORNING)
    assert [c.dedupe_key for c in due] == ["prompt:2026-03-24:morning"]


@pytest.mark.parametrize(
    ("when", "cap"),
    [("2026-03-24 07:30", "day"), ("2026-03-21 12:00", "week")],
)
def test_a_reminder_already_sent_still_counts(when, cap):
    """The control: a re-link reminder sent today (or this week) fills a cap of 1 — nothing more."""
    study = live_study(live_since=LIVE, max_per_day=1 if cap == "day" else 3, max_per_week=1)
    p = participant(study, "P-1", BERLIN, start=DAY)
    logged(p, Reason.RELINK, "relink:earlier", local(when, BERLIN))
    assert both_decisions(MORNING) == []
