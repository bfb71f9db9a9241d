"""A replayed week: `tick --at` every 5 minutes from Monday 23 to Sunday 29 March 2026 (European summer
time starts on the 29th), with readings and cuff syncs reaching the portal as they would. The log must
hold exactly the expected messages; the set-based decision must agree with the per-participant rules
at every half hour."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from cohorts.models import Participant
from measurements.models import Device
from messaging.models import Message, StudyMessaging
from messaging.scheduler.candidates import stamp
from messaging.scheduler.naive import decide_per_participant, rules_of
from messaging.scheduler.sql import decide_sql
from messaging.scheduler.windows import study_windows

from .rules_support import UTC, live_study, local, log_rows, participant, tick, upload

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 23, tzinfo=UTC)
DAYS = [dt.date(2026, 3, 23) + dt.timedelta(days=i) for i in range(7)]

BERLIN, LONDON, PARIS, NEW_YORK, TOKYO, LISBON = (
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/Lisbon",
)


def daily_readings(zone: str, day: dt.date) -> list[dt.datetime]:
    return [local(f"{day} 08:30", zone), local(f"{day} 18:30", zone)]


def prompts(code: str, zone: str, days, windows=("morning", "evening")) -> list[tuple]:
    hours = {"morning": "08:00", "evening": "18:00"}  # morning opens 06:00, in quiet hours until 08:00
    return [
        (code, "prompt", f"prompt:{day}:{w}", local(f"{day} {hours[w]}", zone))
        for day in days
        for w in windows
    ]


def build_week():
    """The participants, and the events (instant → what reaches the portal) of the week."""
    study = live_study(live_since=START)
    start = DAYS[0]
    a = participant(study, "A-BERLIN", BERLIN, start=start)
    b = participant(study, "B-LATE", LONDON, start=start)
    c = participant(study, "C-SILENT", PARIS, start=start, phone="", email="c@example.org")
    d = participant(study, "D-RELINK", NEW_YORK, start=start)
    e = participant(study, "E-TRAVEL", TOKYO, start=start)
    excluded = [
        participant(
            study,
            "F-WITHDRAWN",
            BERLIN,
            start=start,
            status=Participant.Status.WITHDRAWN,
            withdrawn_at=START - dt.timedelta(days=1),
        ),
        participant(study, "G-STOPPED", BERLIN, start=start, sms_opted_out_at=START),
        participant(study, "H-NO-OPT-IN", BERLIN, start=start, opt_in=False),
    ]
    other = live_study(live_since=None, slug="not-live")
    excluded.append(participant(other, "I-NOT-LIVE", BERLIN, start=start))

    events: list[tuple[dt.datetime, Callable[[], None]]] = []

    def at(when: dt.datetime, action: Callable[[], None]) -> None:
        events.append((when, action))

    # E measured on the 23rd before the replay starts: no prompt for a window already done.
    upload(e, local("2026-03-23 08:30", TOKYO), synced=local("2026-03-23 08:31", TOKYO))
    for day in DAYS:
        for when in daily_readings(BERLIN, day):
            at(when, lambda when=when: upload(a, when, synced=when))
    # B: the evening of the 23rd arrives at once; the cuff then stays away from Wi-Fi until the 27th
    # 10:00, when everything it held (24th to 27th morning) arrives together.
    b_first = local("2026-03-23 18:30", LONDON)
    at(b_first, lambda: upload(b, b_first, synced=b_first))
    held = [w for day in DAYS[1:4] for w in daily_readings(LONDON, day)] + [local("2026-03-27 08:30", LONDON)]
    late = local("2026-03-27 10:00", LONDON)
    at(late, lambda: upload(b, *held, synced=late))
    for day in DAYS[4:]:
        for when in daily_readings(LONDON, day):
            if when > late:
                at(when, lambda when=when: upload(b, when, synced=when))
    # C never measures, but the cuff syncs every day at noon: truly no data.
    for day in DAYS:
        noon = local(f"{day} 12:00", PARIS)
        at(noon, lambda noon=noon: upload(c, synced=noon))
    # D: the link breaks late on the 24th (New York), and is repaired on the 26th with a back-fill.
    broke = local("2026-03-24 23:30", NEW_YORK)
    repaired = dt.datetime(2026, 3, 26, 14, 0, tzinfo=UTC)

    def link(status: str, when: dt.datetime) -> Callable[[], None]:
        return lambda: Participant.objects.filter(pk=d.pk).update(
            link_status=status, link_status_changed_at=when
        )

    at(broke, link(Participant.LinkStatus.NEEDS_REAUTH, broke))
    at(repaired, link(Participant.LinkStatus.ACTIVE, repaired))
    for when in [w for day in DAYS for w in daily_readings(NEW_YORK, day)]:
        arrives = repaired if broke <= when < repaired else when  # held ones come with the back-fill
        at(arrives, lambda when=when, arrives=arrives: upload(d, when, synced=max(when, arrives)))
    # E: travels from Tokyo to Lisbon on the 27th (00:00 UTC); the battery is low twice (two episodes).
    at(
        dt.datetime(2026, 3, 27, 0, 0, tzinfo=UTC),
        lambda: Participant.objects.filter(pk=e.pk).update(timezone=LISBON),
    )
    e_times = [
        w for day in DAYS for w in daily_readings(TOKYO, day) if w < dt.datetime(2026, 3, 27, tzinfo=UTC)
    ]
    e_times += [w for day in DAYS[4:] for w in daily_readings(LISBON, day)]
    for when in e_times[1:]:
        at(when, lambda when=when: upload(e, when, synced=when))

    def battery(level: str, when: dt.datetime) -> Callable[[], None]:
        return lambda: Device.objects.filter(participant=e).update(
            battery=level, battery_low_since=when if level == "low" else None
        )

    low_1, low_2 = dt.datetime(2026, 3, 26, 10, 0, tzinfo=UTC), dt.datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    at(low_1, battery("low", low_1))
    at(dt.datetime(2026, 3, 27, 3, 0, tzinfo=UTC), battery("high", low_1))
    at(low_2, battery("low", low_2))
    events.sort(key=lambda item: item[0])
    return study, {"a": a, "b": b, "c": c, "d": d, "e": e}, excluded, events, broke, (low_1, low_2)


def expected_week(broke: dt.datetime, lows: tuple[dt.datetime, dt.datetime]) -> list[tuple]:
    tokyo_days, lisbon_days = DAYS[:4], DAYS[4:]
    rows = (
        prompts("A-BERLIN", BERLIN, DAYS)
        + prompts("B-LATE", LONDON, DAYS)
        + prompts("C-SILENT", PARIS, DAYS)
        + prompts("D-RELINK", NEW_YORK, DAYS)
        # E: the 23rd's morning was measured before its prompt; Tokyo until the 27th's morning (its
        # key then blocks a second morning prompt in Lisbon the same local day), Lisbon after.
        + prompts("E-TRAVEL", TOKYO, DAYS[:1], windows=("evening",))
        + prompts("E-TRAVEL", TOKYO, tokyo_days[1:])
        + prompts("E-TRAVEL", TOKYO, [DAYS[4]], windows=("morning",))
        + prompts("E-TRAVEL", LISBON, [DAYS[4]], windows=("evening",))
        + prompts("E-TRAVEL", LISBON, lisbon_days[1:])
        + [
            # B's cuff had not synced since the missed days: a Wi-Fi nudge, never "you missed it".
            ("B-LATE", "sync_nudge", "sync_nudge:2026-03-24", local("2026-03-27 08:00", LONDON)),
            # C's cuff synced daily and holds nothing: no data for 2 days (after the 24 h grace).
            ("C-SILENT", "no_data", "no_data:2026-03-23", local("2026-03-26 08:00", PARIS)),
            # D's link broke at 23:30, in quiet hours: the re-link message waits for 08:00.
            ("D-RELINK", "relink", f"relink:{stamp(broke)}", local("2026-03-25 08:00", NEW_YORK)),
            ("E-TRAVEL", "low_battery", f"low_battery:{'cuff-' + '0' * 35}:{stamp(lows[0])}", lows[0]),
            ("E-TRAVEL", "low_battery", f"low_battery:{'cuff-' + '0' * 35}:{stamp(lows[1])}", lows[1]),
        ]
    )
    return sorted(rows, key=lambda r: (r[3], r[0], r[2]))


def decisions_agree(at: dt.datetime) -> None:
    rules = list(StudyMessaging.objects.filter(live_since__lte=at))
    windows = study_windows([r.study_id for r in rules], at)
    by_sql = decide_sql(at=at, windows=windows)
    by_participant = decide_per_participant(
        at=at, windows=windows, rules={r.study_id: rules_of(r) for r in rules}
    )
    assert by_sql == by_participant, at


@pytest.mark.parametrize(
    "minutes",
    [30, pytest.param(5, marks=pytest.mark.slow, id="every-5-minutes-as-beat")],
)
def test_a_replayed_week_sends_exactly_the_expected_messages(minutes):
    """Every expected message is due on the hour, so ticking every 30 minutes must give the same log
    as beat's 5 minutes (the slow round): the ticks in between add nothing."""
    _study, people, excluded, events, broke, lows = build_week()
    instant, end, pending = START, START + dt.timedelta(days=7), list(events)
    while instant < end:
        while pending and pending[0][0] <= instant:
            pending.pop(0)[1]()
        if instant.minute == 0:
            decisions_agree(instant)
        tick(instant)
        instant += dt.timedelta(minutes=minutes)

    assert log_rows() == expected_week(broke, lows)
    # Daylight saving: Berlin's 08:00 prompt is 07:00 UTC on Saturday and 06:00 UTC on Sunday.
    berlin = Message.objects.filter(participant=people["a"], reason="prompt", dedupe_key__contains="morning")
    assert {m.dedupe_key: m.due_at.time() for m in berlin}["prompt:2026-03-28:morning"] == dt.time(7, 0)
    assert {m.dedupe_key: m.due_at.time() for m in berlin}["prompt:2026-03-29:morning"] == dt.time(6, 0)
    for p in excluded:
        assert not Message.objects.filter(participant=p).exists(), p.code
    assert not Message.objects.filter(reason="no_data", participant=people["b"]).exists()
    sms = Message.objects.get(participant=people["d"], reason="relink")
    assert sms.channel == "sms"
    assert "/messaging/m/" in sms.body
    assert Message.objects.get(participant=people["c"], reason="no_data").channel == "email"
    assert set(Message.objects.values_list("status", flat=True)) == {"queued"}
