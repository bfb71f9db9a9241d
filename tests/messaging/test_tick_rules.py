"""`tick` one rule at a time: idempotent for an instant, safe when two run at once, dry runs write
nothing, and withdrawal, opt-outs, quiet hours and caps each keep a message from being created."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from django.core.management import CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from cohorts.models import Participant, ParticipantContact
from measurements.models import Device
from measurements.readings.devices import devices_upsert
from messaging.models import Message, MessageTemplate, StudyMessaging
from messaging.scheduler.run import decide, live_rules

from .rules_support import UTC, live_study, local, log_rows, participant, tick

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 23)
LIVE = dt.datetime(2026, 3, 22, tzinfo=UTC)
BERLIN = "Europe/Berlin"
MORNING = local("2026-03-24 08:00", BERLIN)  # first instant of the morning window outside quiet hours


def broken_link(p: Participant, when: dt.datetime) -> None:
    Participant.objects.filter(pk=p.pk).update(
        link_status=Participant.LinkStatus.NEEDS_REAUTH, link_status_changed_at=when
    )


def test_the_same_instant_twice_queues_nothing_new():
    study = live_study(live_since=LIVE)
    p = participant(study, "P-1", BERLIN, start=DAY)
    first = tick(MORNING)
    assert "replay: queued prompt 1" in first
    second = tick(MORNING)
    assert "0 in all" in second
    assert log_rows() == [("P-1", "prompt", "prompt:2026-03-24:morning", MORNING)]
    message = Message.objects.get(participant=p)
    assert "time for your morning blood pressure readings (06:00-11:00)" in message.body


def test_two_ticks_racing_on_separate_connections_queue_each_message_once(transactional_db):
    study = live_study(live_since=LIVE)
    people = [participant(study, f"R-{i}", BERLIN, start=DAY) for i in range(20)]
    for p in people[:10]:
        broken_link(p, LIVE)
    barrier, errors = threading.Barrier(4), []

    def run():
        try:
            barrier.wait()
            tick(MORNING)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Message.objects.filter(reason="prompt").count() == 20
    assert Message.objects.filter(reason="relink").count() == 10
    assert Message.objects.count() == 30


def test_a_dry_run_reports_what_would_be_sent_and_writes_nothing():
    study = live_study(live_since=LIVE)
    participant(study, "P-1", BERLIN, start=DAY)
    out = tick(MORNING, dry_run=True)
    assert "Dry run (nothing written)" in out
    assert "replay: would queue prompt 1" in out
    assert "P-1: Study replay: time for your morning blood pressure readings" in out
    assert not Message.objects.exists()
    assert not MessageTemplate.objects.exists()  # not even the default wording's first version


def test_withdrawn_and_opted_out_participants_get_nothing():
    study = live_study(live_since=LIVE)
    withdrawn = participant(
        study,
        "W-1",
        BERLIN,
        start=DAY,
        status=Participant.Status.WITHDRAWN,
        withdrawn_at=LIVE,
    )
    stopped = participant(study, "S-1", BERLIN, start=DAY, sms_opted_out_at=LIVE)
    unsubscribed = participant(study, "U-1", BERLIN, start=DAY, phone="", email="u@example.org")
    ParticipantContact.objects.filter(participant=unsubscribed).update(email_opted_out_at=LIVE)
    declined = participant(study, "N-1", BERLIN, start=DAY, opt_in=False)
    for p in (withdrawn, stopped, unsubscribed, declined):
        broken_link(p, LIVE)
    out = tick(MORNING)
    assert "0 in all" in out
    assert not Message.objects.exists()


def test_an_opted_out_channel_falls_back_to_the_other_one():
    study = live_study(live_since=LIVE)
    p = participant(study, "P-1", BERLIN, start=DAY, email="p@example.org", sms_opted_out_at=LIVE)
    tick(MORNING)
    assert list(Message.objects.values_list("participant", "channel")) == [(p.pk, "email")]


def test_nothing_in_quiet_hours_the_message_waits_for_their_end():
    study = live_study(live_since=LIVE)
    p = participant(study, "P-1", BERLIN, start=DAY)
    broke = local("2026-03-23 22:10", BERLIN)
    broken_link(p, broke)
    for when in ("2026-03-23 22:15", "2026-03-24 03:00", "2026-03-24 07:55"):
        assert "0 in all" in tick(local(when, BERLIN))
    assert not Message.objects.exists()
    tick(MORNING)
    assert [(r[1], r[3]) for r in log_rows()] == [("prompt", MORNING), ("relink", MORNING)]


def test_a_window_that_closes_in_quiet_hours_gets_no_stale_prompt():
    study = live_study(live_since=LIVE, quiet_start=dt.time(20, 0), quiet_end=dt.time(11, 30))
    participant(study, "P-1", BERLIN, start=DAY)
    for hour in range(24):  # morning 06:00-11:00 lies wholly in quiet hours: no morning prompt
        tick(local(f"2026-03-24 {hour:02d}:00", BERLIN))
    assert [r[2] for r in log_rows()] == ["prompt:2026-03-24:evening"]


def test_the_daily_cap_keeps_the_most_important_message():
    study = live_study(live_since=LIVE, max_per_day=1)
    p = participant(study, "P-1", BERLIN, start=DAY)
    broken_link(p, LIVE)
    tick(MORNING)
    tick(local("2026-03-24 18:00", BERLIN))
    assert [r[1] for r in log_rows()] == ["relink"]  # the prompts found no room that day
    tick(local("2026-03-25 08:00", BERLIN))
    assert [r[2] for r in log_rows()][1:] == ["prompt:2026-03-25:morning"]


def test_the_weekly_cap_counts_the_last_seven_local_days():
    study = live_study(live_since=LIVE, max_per_week=3, no_data_reminders=False)
    participant(study, "P-1", BERLIN, start=DAY)
    for day in range(24, 31):
        for hour in ("08:00", "18:00"):
            tick(local(f"2026-03-{day} {hour}", BERLIN))
    keys = [r[2] for r in log_rows()]
    assert keys == [
        "prompt:2026-03-24:morning",
        "prompt:2026-03-24:evening",
        "prompt:2026-03-25:morning",
        # the 24th leaves the 7-day span on the 31st, not before
    ]
    tick(local("2026-03-31 08:00", BERLIN))
    assert [r[2] for r in log_rows()][3:] == ["prompt:2026-03-31:morning"]


def test_rules_not_live_send_nothing_and_a_study_filter_limits_the_run():
    live = live_study(live_since=LIVE)
    later = live_study(live_since=MORNING + dt.timedelta(hours=1), slug="later")
    participant(live, "P-1", BERLIN, start=DAY)
    participant(later, "Q-1", BERLIN, start=DAY)
    tick(MORNING, study="later")
    assert not Message.objects.exists()
    tick(MORNING)
    assert [r[0] for r in log_rows()] == ["P-1"]


def test_an_unknown_study_or_a_naive_instant_is_refused_and_nothing_is_queued():
    study = live_study(live_since=LIVE)
    participant(study, "P-1", BERLIN, start=DAY)
    with pytest.raises(CommandError, match="No study with the slug 'nope'"):
        tick(MORNING, study="nope")
    from django.core.management import call_command

    with pytest.raises(CommandError, match="has no UTC offset"):
        call_command("tick", at="2026-03-24T08:00:00")
    assert not Message.objects.exists()


def test_a_low_battery_episode_starts_when_getdevice_says_low_and_ends_when_it_does_not():
    study = live_study(live_since=LIVE)
    p = participant(study, "P-1", BERLIN, start=DAY)
    cuff = {"deviceid": "d1", "type": "Blood Pressure Monitor", "last_session_date": 1774339200}
    devices_upsert(participant_id=p.pk, devices=[{**cuff, "battery": "low"}])
    first = Device.objects.get(participant=p).battery_low_since
    assert first is not None
    devices_upsert(participant_id=p.pk, devices=[{**cuff, "battery": "low"}])
    assert Device.objects.get(participant=p).battery_low_since == first  # the same episode
    tick(MORNING)
    tick(MORNING + dt.timedelta(hours=1))
    assert Message.objects.filter(reason="low_battery").count() == 1
    devices_upsert(participant_id=p.pk, devices=[{**cuff, "battery": "high"}])
    assert Device.objects.get(participant=p).battery_low_since is None
    devices_upsert(participant_id=p.pk, devices=[{**cuff, "battery": "low"}])
    tick(MORNING + dt.timedelta(hours=2))
    assert Message.objects.filter(reason="low_battery").count() == 2


@pytest.mark.parametrize("size", [3, 30])
def test_the_decision_takes_the_same_queries_whatever_the_number_of_participants(size):
    study = live_study(live_since=LIVE)
    for i in range(size):
        p = participant(study, f"P-{i}", BERLIN, start=DAY)
        broken_link(p, LIVE)
    rules = live_rules(at=MORNING)
    with CaptureQueriesContext(connection) as ctx:
        due = decide(at=MORNING, rules=rules)
    assert len(due) == 2 * size
    # the protocols and their versions (the windows in force), then the one decision
    assert len(ctx.captured_queries) == 3
    assert StudyMessaging.objects.count() == 1


def test_a_live_tick_sends_what_it_queued(settings):
    settings.SMS_BACKEND = "console"
    # No quiet hours, no prompts: the real clock's hour decides neither (a prompt would be due too
    # while Berlin's morning or evening window is open).
    study = live_study(live_since=LIVE, quiet_start=dt.time(0, 0), quiet_end=dt.time(0, 0), prompts=False)
    p = participant(study, "P-1", BERLIN, start=dt.datetime.now(UTC).date())
    broken_link(p, LIVE)
    from django.core.management import call_command

    out = io.StringIO()
    call_command("tick", stdout=out)
    message = Message.objects.get(participant=p, reason="relink")
    assert message.status == "sent"
    assert "Sent 1" in out.getvalue()


def test_prompts_follow_the_protocol_version_in_force_on_the_day():
    """A protocol edit effective from a later day moves the prompts from that day on, not before."""
    from measurements.models import StudyProtocol
    from measurements.monitoring.services import protocol_save

    study = live_study(live_since=LIVE)
    participant(study, "P-1", BERLIN, start=DAY)
    protocol = StudyProtocol.objects.get(study=study)
    protocol.morning_start = dt.time(9, 0)
    protocol_save(
        actor=None, protocol=protocol, changed=["morning_start"], effective_from=dt.date(2026, 3, 26)
    )

    tick(MORNING)  # 24 March, 08:00: still version 1 (morning from 06:00) — prompted
    tick(local("2026-03-26 08:00", BERLIN))  # 26 March, 08:00: version 2's window opens at 09:00
    tick(local("2026-03-26 09:00", BERLIN))
    assert [(r[2], r[3]) for r in log_rows() if r[1] == "prompt"] == [
        ("prompt:2026-03-24:morning", MORNING),
        ("prompt:2026-03-26:morning", local("2026-03-26 09:00", BERLIN)),
    ]
