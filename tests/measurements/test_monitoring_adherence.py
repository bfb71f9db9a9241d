"""Adherence and classification on hand-computed cases: window edges, DST days, time zones, the
day-1 discard rule, capping, missed days and streaks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cohorts.models import Participant
from measurements.classification import acc_aha_category
from measurements.models import DailyAdherence, StudyProtocol
from measurements.monitoring.adherence import adherence_fill_missing, adherence_rebuild_participant
from measurements.monitoring.selectors import (
    missed_streaks,
    monitoring_annotate,
    participant_adherence,
    protocol_average,
)
from tests.factories import ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
#: Noon UTC on April 2nd, 2024: the local "today" of a Paris participant is April 2nd.
APRIL_2 = dt.datetime(2024, 4, 2, 12, tzinfo=UTC)


def z(text: str) -> dt.datetime:
    """A UTC instant written by hand: '2024-03-25 06:00:00'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def reading(participant, at: str, sys=130, dia=80, **kw):
    return ReadingFactory(
        participant=participant, measured_at=z(at), systolic=Decimal(sys), diastolic=Decimal(dia), **kw
    )


def rows(participant) -> dict[str, tuple]:
    return {
        r.day.isoformat(): (r.protocol_day, r.morning, r.evening, r.other, r.counted, r.expected, r.avg_count)
        for r in DailyAdherence.objects.filter(participant=participant).order_by("day")
    }


@pytest.mark.parametrize(
    ("sys", "dia", "category"),
    [
        (119, 79, "normal"),
        (120, 79, "elevated"),
        (129, 79, "elevated"),
        (130, 79, "stage_1"),
        (119, 80, "stage_1"),
        (139, 89, "stage_1"),
        (140, 60, "stage_2"),
        (110, 90, "stage_2"),
        (180, 120, "stage_2"),
        (181, 80, "crisis"),
        (150, 121, "crisis"),
        (Decimal("180.01"), 70, "crisis"),
    ],
)
def test_acc_aha_categories_at_their_edges(sys, dia, category):
    assert acc_aha_category(Decimal(sys), Decimal(dia)) == category


@pytest.fixture
def paris():
    """HBPM protocol (defaults: 2 per window, 7 days, day 1 discarded); Paris; days 1–7 are
    2024-03-25 … 2024-03-31, the last one the spring-forward day (02:00 CET → 03:00 CEST)."""
    study = StudyFactory(start_date=dt.date(2024, 3, 1))
    StudyProtocol.objects.create(study=study)
    return ParticipantFactory(study=study, timezone="Europe/Paris", start_date=dt.date(2024, 3, 25))


def test_hbpm_days_windows_edges_dst_and_day1_discard(paris):
    p = paris
    # Day 1 (CET, UTC+1): two morning, two evening, all very high: discarded from the average.
    for at in ("2024-03-25 06:00:00", "2024-03-25 06:05:00", "2024-03-25 19:00:00", "2024-03-25 19:05:00"):
        reading(p, at, 170, 100)
    # Day 2: three mornings (capped at 2) and one evening.
    for at in ("2024-03-26 06:00:00", "2024-03-26 06:05:00", "2024-03-26 06:10:00", "2024-03-26 19:00:00"):
        reading(p, at, 130, 80)
    # Day 3, window edges in local time: 03:59:59 other, 04:00:00 morning, 12:00:00 other (end is
    # exclusive), 17:00:00 evening, 23:59:59 evening.
    for at in (
        "2024-03-27 02:59:59",
        "2024-03-27 03:00:00",
        "2024-03-27 11:00:00",
        "2024-03-27 16:00:00",
        "2024-03-27 22:59:59",
    ):
        reading(p, at, 140, 90)
    # Day 4: nothing. Day 5: local midnight belongs to day 5 ("other").
    reading(p, "2024-03-28 23:00:00", 120, 70)
    # Day 7, the DST day (CEST, UTC+2 from 01:00 UTC): 01:59 UTC is 03:59 local (other), 02:00 UTC
    # is 04:00 local (morning); 00:30 UTC is 01:30 CET (other).
    reading(p, "2024-03-31 00:30:00", 120, 70)
    reading(p, "2024-03-31 01:59:00", 120, 70)
    reading(p, "2024-03-31 02:00:00", 150, 95)
    # 22:30 UTC on the DST day is 00:30 on April 1st: day 8, outside the 7-day protocol.
    reading(p, "2024-03-31 22:30:00", 200, 130)
    # Not counted: deleted upstream, a CSV duplicate, maybe another person.
    reading(p, "2024-03-29 06:00:00", deleted_upstream=True)
    reading(p, "2024-03-29 06:01:00", ambiguous_user=True)

    adherence_rebuild_participant(participant_id=p.pk, today=dt.date(2024, 4, 2))

    #                    day  morn eve other counted expected avg_count
    assert rows(p) == {
        "2024-03-25": (1, 2, 2, 0, 4, 4, 0),
        "2024-03-26": (2, 3, 1, 0, 3, 4, 4),
        "2024-03-27": (3, 1, 2, 2, 3, 4, 3),
        "2024-03-28": (4, 0, 0, 0, 0, 4, 0),
        "2024-03-29": (5, 0, 0, 1, 0, 4, 0),
        "2024-03-30": (6, 0, 0, 0, 0, 4, 0),
        "2024-03-31": (7, 1, 0, 2, 1, 4, 1),
        "2024-04-01": (None, 0, 0, 1, 0, 0, 0),
    }
    protocol = p.study.protocol
    summary = participant_adherence(participant=p, protocol=protocol, at=APRIL_2)
    assert (summary.counts.study_counted, summary.counts.study_expected) == (11, 28)
    assert summary.counts.study_percent == 39.3
    # Last 7 complete days before April 2nd: March 26 … April 1.
    assert (summary.counts.week_counted, summary.counts.week_expected) == (7, 24)
    assert (summary.current_missed_streak, summary.longest_missed_streak) == (0, 3)
    # Average of days 2–7 window readings: 4×130/80 + 3×140/90 + 1×150/95 = 1090/685 over 8.
    assert summary.average.readings == 8
    assert (summary.average.systolic, summary.average.diastolic) == (Decimal("136.3"), Decimal("85.6"))
    assert summary.average.valid is False  # 8 < 12 valid readings
    assert summary.average.above_threshold is None
    # The same figures from the database annotations of the changelist.
    annotated = monitoring_annotate(Participant.objects.filter(pk=p.pk), at=APRIL_2).get()
    assert (annotated.study_counted, annotated.study_expected) == (11, 28)
    assert (annotated.week_counted, annotated.week_expected) == (7, 24)
    assert round(annotated.study_percent, 1) == 39.3
    assert annotated.avg_n == 8
    assert annotated.avg_sys_sum == Decimal("1090")
    assert annotated.last_reading_at == z("2024-03-31 22:30:00")
    assert (annotated.last_systolic, annotated.last_diastolic) == (200, 130)


def test_without_discard_day_one_counts_in_the_average(paris):
    StudyProtocol.objects.filter(study=paris.study).update(discard_first_day=False)
    reading(paris, "2024-03-25 06:00:00", 170, 100)
    reading(paris, "2024-03-26 06:00:00", 130, 80)
    adherence_rebuild_participant(participant_id=paris.pk, today=dt.date(2024, 4, 2))
    summary = participant_adherence(
        participant=paris, protocol=StudyProtocol.objects.get(study=paris.study), at=APRIL_2
    )
    assert (summary.average.readings, summary.average.systolic) == (2, Decimal("150.0"))


def test_same_instant_falls_on_different_local_days_by_time_zone():
    study = StudyFactory(start_date=dt.date(2024, 3, 20))
    StudyProtocol.objects.create(study=study, duration_days=None)
    paris = ParticipantFactory(study=study, timezone="Europe/Paris", start_date=dt.date(2024, 3, 20))
    new_york = ParticipantFactory(study=study, timezone="America/New_York", start_date=dt.date(2024, 3, 20))
    tokyo = ParticipantFactory(study=study, timezone="Asia/Tokyo", start_date=dt.date(2024, 3, 20))
    # 2024-03-26 03:00 UTC: 04:00 Paris (morning, the 26th), 23:00 New York (EDT since March 10:
    # evening of the 25th), 12:00 Tokyo (the 26th, other: the morning window ends at 12:00).
    for p in (paris, new_york, tokyo):
        reading(p, "2024-03-26 03:00:00")
        adherence_rebuild_participant(participant_id=p.pk, today=dt.date(2024, 3, 27))
    assert rows(paris)["2024-03-26"][1:5] == (1, 0, 0, 1)
    assert rows(new_york)["2024-03-25"][1:5] == (0, 1, 0, 1)
    assert rows(new_york)["2024-03-26"][1:5] == (0, 0, 0, 0)
    assert rows(tokyo)["2024-03-26"][1:5] == (0, 0, 1, 0)


def test_fall_back_day_has_25_hours_and_both_0130s_count():
    study = StudyFactory()
    StudyProtocol.objects.create(
        study=study, kind=StudyProtocol.Kind.DAILY, readings_per_day=3, duration_days=None
    )
    p = ParticipantFactory(study=study, timezone="Europe/Paris", start_date=dt.date(2024, 10, 26))
    # 2024-10-27: 01:30 CEST = 23:30 UTC (26th) and 01:30 CET = 00:30 UTC; 23:30 CET = 22:30 UTC.
    for at in ("2024-10-26 23:30:00", "2024-10-27 00:30:00", "2024-10-27 22:30:00", "2024-10-27 23:00:00"):
        reading(p, at)
    adherence_rebuild_participant(participant_id=p.pk, today=dt.date(2024, 10, 29))
    got = rows(p)
    # "N per day": any time of day counts, capped at 3; the 4th (00:00 on the 28th) is the next day.
    assert got["2024-10-27"][1:6] == (0, 1, 2, 3, 3)
    assert got["2024-10-28"][1:6] == (0, 0, 1, 1, 3)
    assert got["2024-10-26"][4:6] == (0, 3)


def test_invited_participants_expect_nothing_and_withdrawal_ends_the_period():
    study = StudyFactory()
    StudyProtocol.objects.create(study=study, duration_days=None)
    invited = ParticipantFactory(
        study=study, status=Participant.Status.INVITED, start_date=dt.date(2024, 5, 1)
    )
    withdrawn = ParticipantFactory(
        study=study,
        status=Participant.Status.WITHDRAWN,
        start_date=dt.date(2024, 5, 1),
        withdrawn_at=z("2024-05-04 10:00:00"),
    )
    for p in (invited, withdrawn):
        adherence_rebuild_participant(participant_id=p.pk, today=dt.date(2024, 5, 10))
    assert rows(invited) == {}
    assert list(rows(withdrawn)) == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_nightly_fill_adds_zero_rows_for_missed_days_once(paris):
    reading(paris, "2024-03-26 06:00:00")
    adherence_rebuild_participant(participant_id=paris.pk, today=dt.date(2024, 3, 27))
    # The rebuild made rows through the 27th: the fill adds the 28th and 29th.
    assert adherence_fill_missing(study_id=paris.study_id, through=dt.date(2024, 3, 29)) == 2
    assert adherence_fill_missing(study_id=paris.study_id, through=dt.date(2024, 3, 29)) == 0
    got = rows(paris)
    assert got["2024-03-28"] == (4, 0, 0, 0, 0, 4, 0)
    assert got["2024-03-26"][4] == 1


def test_streaks_ignore_days_that_expect_nothing():
    def day(n, counted, expected=4):
        return DailyAdherence(day=dt.date(2024, 1, n), counted=counted, expected=expected)

    days = [
        day(1, 0),
        day(2, 0),
        day(3, 2),
        day(4, 0),
        day(5, 0, expected=0),
        day(6, 0),
        day(7, 0),
        day(8, 0),
    ]
    assert missed_streaks(days, today=dt.date(2024, 1, 8)) == (3, 3)  # 4, 6, 7 (8 is today)
    assert missed_streaks(days, today=dt.date(2024, 1, 9)) == (4, 4)


def test_protocol_average_validity_and_home_thresholds():
    protocol = StudyProtocol()
    assert protocol.expected_per_day == 4
    below = protocol_average(
        readings=12, systolic_sum=Decimal(12 * 134), diastolic_sum=Decimal(12 * 84), protocol=protocol
    )
    assert (below.valid, below.above_threshold) == (True, False)
    at_sys = protocol_average(
        readings=12, systolic_sum=Decimal(12 * 135), diastolic_sum=Decimal(12 * 70), protocol=protocol
    )
    assert at_sys.above_threshold is True
    at_dia = protocol_average(
        readings=13, systolic_sum=Decimal(13 * 120), diastolic_sum=Decimal(13 * 85), protocol=protocol
    )
    assert at_dia.above_threshold is True
    too_few = protocol_average(
        readings=11, systolic_sum=Decimal(11 * 150), diastolic_sum=Decimal(11 * 95), protocol=protocol
    )
    assert (too_few.valid, too_few.above_threshold) == (False, None)
    custom = StudyProtocol(home_systolic_threshold=130, home_diastolic_threshold=80)
    assert protocol_average(
        readings=12, systolic_sum=Decimal(12 * 131), diastolic_sum=Decimal(0), protocol=custom
    ).above_threshold


def test_ingestion_refreshes_the_touched_days(paris):
    from measurements.readings.parse import parse_groups
    from measurements.readings.upsert import readings_upsert_api
    from tests.measurements.test_parsing_and_upsert import bp_group

    first = bp_group(grpid=1)
    first["date"] = int(z("2024-03-26 06:00:00").timestamp())
    readings_upsert_api(participant_id=paris.pk, readings=parse_groups([first]).readings)
    assert rows(paris)["2024-03-26"][1:6] == (1, 0, 0, 1, 4)
    # Edited upstream and moved to the evening of the 27th: both days are recomputed.
    moved = {**first, "date": int(z("2024-03-27 19:00:00").timestamp()), "modified": first["modified"] + 10}
    readings_upsert_api(participant_id=paris.pk, readings=parse_groups([moved]).readings)
    assert rows(paris)["2024-03-26"][1:6] == (0, 0, 0, 0, 4)
    assert rows(paris)["2024-03-27"][1:6] == (0, 1, 0, 1, 4)
    # Deleted upstream (the group came back as a non-BP group): the day drops to zero.
    readings_upsert_api(participant_id=paris.pk, readings=[], non_bp_grpids=[1])
    assert rows(paris)["2024-03-27"][1:6] == (0, 0, 0, 0, 4)


@pytest.mark.parametrize("clock", ["04:00:03", "12:00:00", "16:59:55", "00:00:01"])
def test_protocol_window_defaults_pass_the_system_checks_at_any_time_of_day(monkeypatch, clock):
    """Django's fields.W161 flags a fixed time default when the check runs within 10 s of it, which
    would make `check --deploy --fail-level WARNING` fail at 04:00 (seen in a benchmark log)."""
    import django.db.models.fields as fields

    hour, minute, second = (int(part) for part in clock.split(":"))
    monkeypatch.setattr(fields, "_get_naive_now", lambda: dt.datetime(2026, 11, 24, hour, minute, second))
    assert [m.id for m in StudyProtocol.check() if m.id == "fields.W161"] == []
    assert StudyProtocol().morning_start == dt.time(4, 0)
    assert StudyProtocol().evening_end == dt.time(0, 0)
