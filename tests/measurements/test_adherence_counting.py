"""One counting rule (`monitoring.counting`): the participant's status page, the monitoring list, the
participant page and the worklist show the same "7 days" numbers, counted on the participant's own
local days, from enrolment, within the windows, capped per window.

Before, the status page counted raw readings of the last 168 hours (7 of 28 here) while the list
summed the rollup over the UTC week from the study's start (4/28 or 5/28): readings before enrolment
counted, and a participant far from UTC saw another week than their coordinator."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils.timezone import now

from cohorts import enrollment
from cohorts.models import Participant, Role
from measurements.models import DailyAdherence, StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.monitoring.counting import adherence_counts
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db


def far_zone() -> str:
    """A zone whose local date differs from UTC's right now (UTC+14 from 10:00 UTC, UTC-11 before
    11:00 UTC), so that counting on the UTC week would show."""
    return "Pacific/Kiritimati" if now().hour >= 10 else "Pacific/Pago_Pago"


def local(day: dt.date, hour: int, minute: int, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(zone))


@pytest.fixture
def week():
    """Enrolled three local days ago in a study that started 20 days ago (4 readings a day expected):
    two readings before enrolment, three mornings on the enrolment day (2 count), one evening the
    next day, one reading today (not a complete day)."""
    zone = far_zone()
    today = now().astimezone(ZoneInfo(zone)).date()
    enrolled = today - dt.timedelta(days=3)
    study = StudyFactory(start_date=today - dt.timedelta(days=20))
    StudyProtocol.objects.create(study=study, kind=StudyProtocol.Kind.HBPM, duration_days=None)
    participant = ParticipantFactory(
        study=study, timezone=zone, start_date=None, enrolled_at=local(enrolled, 15, 0, zone)
    )
    before = enrolled - dt.timedelta(days=2)
    for when in (
        local(before, 7, 0, zone),
        local(before, 7, 5, zone),
        local(enrolled, 7, 0, zone),
        local(enrolled, 7, 5, zone),
        local(enrolled, 7, 10, zone),
        local(enrolled + dt.timedelta(days=1), 19, 0, zone),
        min(now(), local(today, 0, 30, zone)),
    ):
        ReadingFactory(participant=participant, measured_at=when)
    adherence_rebuild_participant(participant_id=participant.pk)
    return participant, enrolled


def test_status_page_and_staff_pages_show_the_same_week(client, week):
    participant, enrolled = week
    expected = (3, 12)  # 2 (capped window) + 1, of 3 complete days × 4 since enrolment
    counts = adherence_counts(participant)
    assert (counts.week_counted, counts.week_expected) == expected

    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    status = client.get(reverse("participant_status", args=[token])).content.decode()
    shown = r"Readings in the last 7 days:\s*<span[^>]*>3</span>\s*of the 12 the study asks for"
    assert re.search(shown, status)

    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    changelist = client.get(reverse("admin:measurements_monitoredparticipant_changelist")).content.decode()
    assert re.search(r'<td class="field-week">([^<]*)</td>', changelist).group(1) == "3/12"
    percent = re.search(r'<td class="field-week_adherence"><span[^>]*>([^<]*)</span>', changelist)
    assert percent.group(1) == "25%"
    page = client.get(
        reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk])
    ).content.decode()
    assert "last 7 days: 3/12 readings" in page
    assert "whole study: 3/12" in page
    assert f"Protocol days: {enrolled.isoformat()} →" in page  # not the study's start
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    assert "<td>3/12</td>" in worklist
    assert "7-day adherence 25%" in worklist
    home = client.get(reverse("admin:index")).content.decode()
    assert "(3/12 readings, target 80%)" in home


def test_readings_before_enrolment_do_not_count(week):
    participant, enrolled = week
    rows = {r.day: r for r in DailyAdherence.objects.filter(participant=participant)}
    before = rows[enrolled - dt.timedelta(days=2)]  # the day still has its row (its readings exist)…
    assert (before.morning, before.counted, before.expected, before.protocol_day) == (2, 0, 0, None)
    assert rows[enrolled].protocol_day == 1  # …but the protocol starts on the enrolment day
    assert not any(r.expected for day, r in rows.items() if day < enrolled)
    assert adherence_counts(participant).study_counted == 3


def test_the_week_is_the_participants_local_one():
    """At 23:30 UTC on March 9th it is already March 10th in Kiritimati (UTC+14): the week is
    March 3–9 there, March 2–8 in UTC."""
    participant = ParticipantFactory(timezone="Pacific/Kiritimati", status=Participant.Status.ACTIVE)
    for offset in range(10):
        day = dt.date(2026, 3, 1) + dt.timedelta(days=offset)
        DailyAdherence.objects.create(
            study=participant.study, participant=participant, day=day, counted=offset % 4, expected=4
        )
    at = dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.UTC)
    counts = adherence_counts(participant, at=at)
    # March 3..9: offsets 2..8 → 2+3+0+1+2+3+0 = 11 of 28; March 1..9 for the whole study.
    assert (counts.week_counted, counts.week_expected) == (11, 28)
    assert (counts.study_counted, counts.study_expected) == (12, 36)
