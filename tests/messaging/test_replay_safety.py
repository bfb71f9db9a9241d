"""Replaying a past week with `tick --at` on a live database: what the replay queues, and what was
queued long ago, is never sent late (it expires, the reason in the delivery log), while a normal
tick still sends what is due now — including a reminder queued a little earlier and a one-off."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging import dispatch, services
from messaging.models import Message, Reason

from .rules_support import live_study, participant, tick

pytestmark = pytest.mark.django_db
WINDOW = {"window": "morning", "window_start": "06:00", "window_end": "11:00"}


@pytest.fixture(autouse=True)
def _console_sms(settings):
    settings.SMS_BACKEND = "console"
    settings.MESSAGING_SMS_PER_SECOND = 1000.0
    settings.MESSAGING_STALE_AFTER_MINUTES = 120


def zone_at_nine(now: dt.datetime) -> str:
    """A fixed-offset zone in which ``now`` is 09:xx local (the morning window, after quiet hours)."""
    offset = ((9 - now.hour + 12) % 24) - 12  # UTC+offset, within -12..+11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def test_a_replayed_past_week_sends_nothing_stale_and_a_normal_tick_still_sends_what_is_due():
    now = timezone.now()
    week_start = (now - dt.timedelta(days=28)).replace(hour=0, minute=0, second=0, microsecond=0)
    study = live_study(live_since=week_start - dt.timedelta(days=1))
    # Measured nothing in the replayed week: prompts, then no-data reminders, all in the past.
    replayed = participant(study, "A-REPLAY", "Europe/Berlin", start=week_start.date())
    # Rows queued before the replay: one three days old (a dispatcher that was down), one 30 min old.
    queued = participant(study, "Q-QUEUED", "Europe/Berlin", start=week_start.date(), phone="+447700900002")
    old = services.message_queue(
        participant=queued,
        reason=Reason.NO_DATA,
        dedupe_key="no_data:old",
        context={"days": 3},
        due_at=now - dt.timedelta(days=3),
    )
    recent = services.message_queue(
        participant=queued, reason=Reason.NO_DATA, dedupe_key="no_data:recent", context={"days": 2},
        due_at=now - dt.timedelta(minutes=30),
    )  # fmt: skip
    one_off = services.message_queue(
        participant=queued, reason=Reason.ONE_OFF, dedupe_key="one_off:1", due_at=now - dt.timedelta(days=1)
    )
    # A participant whose morning window is open right now: the normal tick prompts them.
    present = participant(study, "N-NOW", zone_at_nine(now), start=now.date(), phone="+447700900003")

    for hour in range(0, 7 * 24, 3):  # the replay: every three hours of the week four weeks ago
        tick(week_start + dt.timedelta(hours=hour))
    replay_rows = Message.objects.exclude(pk__in=[old.pk, recent.pk, one_off.pk])
    assert replay_rows.filter(participant=replayed).count() > 0
    assert set(replay_rows.values_list("status", flat=True)) == {Message.Status.QUEUED}
    replay_pks = set(replay_rows.values_list("pk", flat=True))
    assert not Message.objects.filter(participant=present).exists()

    out = io.StringIO()
    call_command("tick", stdout=out)  # the normal tick: decide as of now, then send what is due

    # Sent: the 30-minute-old reminder, the one-off (not a reminder of a moment) and N-NOW's prompt.
    sent = Message.objects.filter(status=Message.Status.SENT)
    assert sorted(sent.values_list("participant__code", "dedupe_key")) == [
        ("N-NOW", f"prompt:{now.astimezone(ZoneInfo(present.timezone)).date()}:morning"),
        ("Q-QUEUED", "no_data:recent"),
        ("Q-QUEUED", "one_off:1"),
    ]
    assert "Sent 3" in out.getvalue()
    # Everything the replay queued, and the three-day-old reminder, expired with the reason shown.
    expired = Message.objects.filter(status=Message.Status.EXPIRED)
    assert set(expired.values_list("pk", flat=True)) == {*replay_pks, old.pk}
    assert {m.error for m in expired} == {
        "Not sent: still queued 120 min after it was due (replayed or late); never sent late."
    }
    assert all(m.sent_at is None and m.provider_id == "" and m.attempts == 0 for m in expired)
    assert {recent.pk, one_off.pk} <= set(sent.values_list("pk", flat=True))
    # The replay again, now that its rows are in the log: nothing new is queued, nothing sent.
    tick(week_start + dt.timedelta(hours=9))
    assert dispatch.dispatch_due() == 0
    assert Message.objects.filter(status=Message.Status.QUEUED).count() == 0


def test_a_stale_reminder_claimed_directly_expires_too(settings):
    """The immediate path (a task sending one message) checks the bound as well."""
    now = timezone.now()
    study = live_study(live_since=now - dt.timedelta(days=30), slug="direct")
    p = participant(study, "D-1", "Europe/Berlin", start=now.date())
    stale = services.message_queue(
        participant=p,
        reason=Reason.PROMPT,
        dedupe_key="prompt:x",
        context=WINDOW,
        due_at=now - dt.timedelta(minutes=121),
    )
    fresh = services.message_queue(
        participant=p,
        reason=Reason.PROMPT,
        dedupe_key="prompt:y",
        context=WINDOW,
        due_at=now - dt.timedelta(minutes=119),
    )
    assert dispatch.send_message(stale.pk) == Message.Status.EXPIRED
    assert dispatch.send_message(fresh.pk) == Message.Status.SENT
    stale.refresh_from_db()
    assert (stale.status, stale.sent_at, stale.provider_id) == (Message.Status.EXPIRED, None, "")
