"""The rules page's "last 7 days" counts each participant's own week — the seven complete local days
before their today, as the adherence columns do — not the UTC one. At Monday 9 March 2026 12:00 UTC
it is already Tuesday 10 March 01:00 in Auckland (UTC+13): that participant's week is 3–9 March,
while the UTC week would be 2–8 March; in Los Angeles (UTC-7) it is Monday 05:00, week 2–8 March."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from measurements.models import DailyAdherence
from messaging.models import Message
from messaging.selectors import Group, study_messaging_week
from tests.factories import ParticipantFactory, StudyFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)
NZ, LA = "Pacific/Auckland", "America/Los_Angeles"


def local(day: int, hour: int, minute: int, zone: str) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(zone))


def test_the_week_is_each_participants_local_week():
    study = StudyFactory()
    nz = ParticipantFactory(study=study, code="NZ", timezone=NZ)
    la = ParticipantFactory(study=study, code="LA", timezone=LA)

    def adherence(p, day, counted, expected=2):
        DailyAdherence.objects.create(
            study=study, participant=p, day=dt.date(2026, 3, day), counted=counted, expected=expected
        )

    def message(p, key, status, *, day, sent=None, reason="one_off"):
        Message.objects.create(
            study=study, participant=p, reason=reason, dedupe_key=key, channel="sms", status=status,
            local_day=dt.date(2026, 3, day), sent_at=sent,
        )  # fmt: skip

    # Auckland: 2 March is outside the local week (inside the UTC one); 9 March inside (outside UTC).
    adherence(nz, 2, 0)
    adherence(nz, 5, 1)
    adherence(nz, 9, 2)
    adherence(nz, 10, 0)  # today, not complete: not counted
    message(nz, "prompt:9", Message.Status.DELIVERED, day=9, sent=local(9, 8, 0, NZ), reason="prompt")
    message(nz, "one:3", Message.Status.SENT, day=3, sent=local(3, 0, 30, NZ))  # 2 March 11:30 UTC
    message(nz, "one:5", Message.Status.BOUNCED, day=5, sent=local(5, 9, 0, NZ))
    message(nz, "one:10", Message.Status.SENT, day=10, sent=local(10, 0, 30, NZ))  # today: not yet
    message(nz, "queued", Message.Status.QUEUED, day=10)
    # Los Angeles: its week is 2–8 March; the only reminder expired, so LA was not reminded.
    adherence(la, 1, 2)  # before the week
    adherence(la, 2, 2)
    adherence(la, 8, 0)
    adherence(la, 9, 2)  # today
    message(la, "prompt:4", Message.Status.EXPIRED, day=4, reason="prompt")
    message(la, "one:8", Message.Status.SENT, day=8, sent=local(8, 23, 0, LA))  # 9 March 06:00 UTC

    week = study_messaging_week(study, at=AT)

    # Sent in each one's week: NZ on 9, 3 and 5 March (local), LA on 8 March — 4; one bounced.
    assert (week.sent, week.failed, week.queued) == (4, 1, 1)
    assert week.delivery_percent == 75.0
    # Reminded (a prompt delivered on 9 March, NZ-local): NZ, 5 and 9 March: 3 of 4.
    assert week.reminded == Group(participants=1, counted=3, expected=4)
    # Not reminded: LA, 2 and 8 March: 2 of 4.
    assert week.not_reminded == Group(participants=1, counted=2, expected=4)
    assert week.reminded.percent == 75.0
