"""Plausibility flags (`measurements.quality`): the rules by hand, the SQL form equal to the Python
one, computed on every ingestion path (API page on PostgreSQL and the reference path, CSV import),
backfilled in batches; implausible readings kept, left out of categories and averages (and, when
hard-flagged, of alerts: see test_safety_soft_flags), shown struck through with the reason, counted on
the study page."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now

from cohorts import enrollment
from cohorts.models import Role
from measurements import quality
from measurements.models import Alert, BloodPressureReading, DailyAdherence, StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.readings.store import _reference, readings_store_api_page
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory
from tests.fixtures.shared_data import SHARED_FIXTURES
from tests.measurements.test_import_withings_csv import csv_bytes, zipped
from tests.measurements.test_parsing_and_upsert import bp_group

pytestmark = pytest.mark.django_db

DIA_LOW, PP_HIGH = 8, 64  # diastolic_below_20, pulse_pressure_above_100


@pytest.mark.parametrize(
    ("sys", "dia", "pulse", "codes"),
    [
        (161, 1, 82, ["diastolic_below_20", "pulse_pressure_above_100"]),  # the real manual entry
        (120, 80, 70, []),
        (50, 20, 220, []),  # every bound itself is plausible: 50, 20, pulse pressure 30, pulse 220
        (180, 80, 30, []),  # pulse pressure exactly 100, pulse exactly 30
        (181, 80, 29, ["pulse_pressure_above_100", "pulse_out_of_range"]),
        (301, 150, None, ["systolic_above_300", "pulse_pressure_above_100"]),  # unknown pulse: no pulse rule
        (120, 120, 60, ["systolic_not_above_diastolic", "pulse_pressure_below_20"]),
        (49, 19, 221, ["systolic_below_50", "diastolic_below_20", "pulse_out_of_range"]),
        (200, 161, 70, ["diastolic_above_160"]),  # pulse pressure 39: fine
        (118, 113, 63, ["pulse_pressure_below_20"]),
    ],
)
def test_rules_by_hand(sys, dia, pulse, codes):
    flags = quality.flags_of(Decimal(sys), Decimal(dia), None if pulse is None else Decimal(pulse))
    assert quality.codes(flags) == codes
    assert quality.codes_text(flags) == (";".join(codes) or None)


def test_pulse_range_is_configurable(settings):
    settings.PLAUSIBLE_PULSE_RANGE = (40, 180)
    assert quality.codes(quality.flags_of(120, 80, 35)) == ["pulse_out_of_range"]
    assert quality.codes(quality.flags_of(120, 80, 181)) == ["pulse_out_of_range"]
    assert quality.flags_of(120, 80, 40) == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL form runs on PostgreSQL")
def test_the_sql_form_gives_the_python_flags():
    values = [Decimal(v) for v in ("0", "19.5", "20", "49", "50", "120", "160", "160.5", "300", "301")]
    cases = [
        (s, d, p)
        for s in values
        for d in values
        for p in (None, Decimal("29"), Decimal("30"), Decimal("221"))
    ]
    expr = quality.flags_sql("v.s", "v.d", "v.p")
    rows = ", ".join(
        f"({s}::numeric, {d}::numeric, {'NULL' if p is None else p}::numeric)" for s, d, p in cases
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {expr}, {quality.codes_sql(expr)} FROM (VALUES {rows}) AS v(s, d, p)",
            quality.sql_params(),
        )
        got = cursor.fetchall()
    assert got == [(quality.flags_of(*c), quality.codes_text(quality.flags_of(*c))) for c in cases]


def _fresh_groups() -> list[dict]:
    recent = int((now() - dt.timedelta(hours=3)).timestamp())
    return [
        # the real data's manual entry, today: diastolic 1
        bp_group(grpid=1, sys=(161, 0), dia=(1, 0), pulse=(82, 0), attrib=2, date=recent, modified=recent),
        # above the crisis threshold but impossible: systolic 310, pulse pressure 160
        bp_group(grpid=2, sys=(310, 0), dia=(150, 0), date=recent + 60, modified=recent + 60),
        # a plausible crisis
        bp_group(grpid=3, sys=(190, 0), dia=(100, 0), date=recent + 120, modified=recent + 120),
    ]


@pytest.mark.parametrize("path", ["page", "reference"])
def test_ingest_flags_keeps_and_leaves_implausible_readings_out_of_categories_and_alerts(path):
    study = StudyFactory()
    StudyProtocol.objects.create(study=study, duration_days=None, crisis_systolic=180, crisis_diastolic=120)
    participant = ParticipantFactory(
        study=study, timezone="UTC", start_date=now().date() - dt.timedelta(days=5)
    )
    if path == "page":
        readings_store_api_page(participant_id=participant.pk, groups=_fresh_groups(), source_timezone="UTC")
    else:
        _reference(participant.pk, _fresh_groups(), "UTC", None)
    flags = dict(
        BloodPressureReading.objects.filter(participant=participant).values_list("grpid", "quality_flags")
    )
    assert flags == {1: DIA_LOW + PP_HIGH, 2: 1 + PP_HIGH, 3: 0}  # kept, all three
    alert = Alert.objects.get(participant=participant)  # one: 190/100, not 310/150 nor 161/1
    assert alert.kind == Alert.Kind.CRISIS
    assert alert.detail["count"] == 1
    day = DailyAdherence.objects.get(participant=participant)
    assert day.morning + day.evening + day.other == 3  # measured: counts for adherence
    assert (day.normal, day.elevated, day.stage_1, day.stage_2, day.crisis) == (0, 0, 0, 0, 1)


def test_an_upstream_edit_recomputes_the_flags():
    participant = ParticipantFactory(timezone="UTC")
    group = bp_group(grpid=9, sys=(161, 0), dia=(1, 0), attrib=2)
    readings_store_api_page(participant_id=participant.pk, groups=[group], source_timezone="UTC")
    assert BloodPressureReading.objects.get(grpid=9).quality_flags == DIA_LOW + PP_HIGH
    fixed = bp_group(grpid=9, sys=(161, 0), dia=(91, 0), attrib=2, modified=group["modified"] + 60)
    readings_store_api_page(participant_id=participant.pk, groups=[fixed], source_timezone="UTC")
    reading = BloodPressureReading.objects.get(grpid=9)
    assert (reading.quality_flags, reading.edited_upstream) == (0, True)


def test_csv_import_flags(tmp_path):
    """Within the importer's own file checks (it refuses a file with e.g. diastolic 1 outright), the
    plausibility rules flag: 161/45 (pulse pressure 116), 118/113 (5), pulse 25."""
    participant = ParticipantFactory(timezone="UTC")
    path = tmp_path / "export.zip"
    rows = (
        '"2024-05-01 09:00:00",82,161,45,',
        '"2024-05-01 10:00:00",25,118,113,',
        '"2024-05-01 11:00:00",70,120,80,',
    )
    path.write_bytes(zipped({"data/bp.csv": csv_bytes(*rows)}))
    call_command("import_withings_export", participant.study.slug, participant.code, str(path))
    stored = BloodPressureReading.objects.filter(participant=participant)
    assert sorted(stored.values_list("systolic", "quality_flags")) == [
        (Decimal(118), 32 + 128),
        (Decimal(120), 0),
        (Decimal(161), PP_HIGH),
    ]


def test_backfill_recomputes_in_batches_refreshes_the_rollup_and_is_idempotent(capsys):
    participant = ParticipantFactory(timezone="UTC", start_date=dt.date(2024, 3, 1))
    at = dt.datetime(2024, 3, 2, 8, 0, tzinfo=dt.UTC)
    for minutes, (sys, dia) in enumerate([(161, 1), (125, 82), (120, 120), (135, 85), (170, 60)]):
        ReadingFactory(
            participant=participant,
            measured_at=at + dt.timedelta(minutes=minutes),
            systolic=sys,
            diastolic=dia,
        )
    BloodPressureReading.objects.update(quality_flags=0)  # as stored before the column existed
    adherence_rebuild_participant(participant_id=participant.pk, today=dt.date(2024, 3, 3))
    before = DailyAdherence.objects.get(participant=participant, day=at.date())
    assert before.normal + before.elevated + before.stage_1 + before.stage_2 + before.crisis == 5

    call_command("readings_quality_backfill", "--batch", "2")
    assert "3 reading(s)" in capsys.readouterr().out  # 161/1, 120/120 and 170/60 (pulse pressure 110)
    assert sorted(BloodPressureReading.objects.values_list("systolic", "quality_flags")) == [
        (Decimal(120), 16 + 32),
        (Decimal(125), 0),
        (Decimal(135), 0),
        (Decimal(161), DIA_LOW + PP_HIGH),
        (Decimal(170), PP_HIGH),
    ]
    after = DailyAdherence.objects.get(participant=participant, day=at.date())
    # 125/82 is stage 1 and 135/85 stage 1 (ACC/AHA): the three implausible ones are no longer classified.
    assert (after.normal, after.elevated, after.stage_1, after.stage_2, after.crisis) == (0, 0, 2, 0, 0)
    assert after.morning == 5  # still counted as measured
    call_command("readings_quality_backfill")
    assert "0 reading(s)" in capsys.readouterr().out


@pytest.mark.shared_fixture("measurement_list.json")
def test_the_real_161_over_1_is_flagged_and_left_out_of_the_average():
    groups = json.loads((SHARED_FIXTURES / "measurement_list.json").read_text())
    study = StudyFactory()
    StudyProtocol.objects.create(
        study=study,
        kind=StudyProtocol.Kind.DAILY,
        readings_per_day=1,
        duration_days=None,
        discard_first_day=False,
    )
    participant = ParticipantFactory(study=study, timezone="Europe/Paris", start_date=dt.date(2021, 7, 1))
    readings_store_api_page(participant_id=participant.pk, groups=groups, source_timezone="Europe/Paris")
    manual = BloodPressureReading.objects.get(participant=participant, grpid=2920427745)
    assert (manual.systolic, manual.diastolic, manual.manual_entry) == (161, 1, True)
    assert quality.codes(manual.quality_flags) == ["diastolic_below_20", "pulse_pressure_above_100"]
    # Its day (2021-07-12, Paris) also has 175/105 at 13:00 (device): only that one is averaged, classified.
    day = DailyAdherence.objects.get(participant=participant, day=dt.date(2021, 7, 12))
    assert day.morning + day.evening + day.other == 2
    assert (day.avg_count, day.systolic_sum, day.diastolic_sum) == (1, Decimal(175), Decimal(105))
    assert (day.normal, day.elevated, day.stage_1, day.stage_2, day.crisis) == (0, 0, 0, 1, 0)


def test_pages_strike_implausible_readings_through_with_the_reason_and_count_them(client):
    study = StudyFactory(slug="qa", start_date=now().date() - dt.timedelta(days=20))
    StudyProtocol.objects.create(study=study, duration_days=None)
    participant = ParticipantFactory(
        study=study, code="Q-001", start_date=now().date() - dt.timedelta(days=10)
    )
    ReadingFactory(
        participant=participant, measured_at=now() - dt.timedelta(hours=3), systolic=128, diastolic=78
    )
    ReadingFactory(
        participant=participant,
        measured_at=now() - dt.timedelta(hours=1),
        systolic=161,
        diastolic=1,
        pulse=82,
    )
    adherence_rebuild_participant(participant_id=participant.pk)

    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    status = client.get(reverse("participant_status", args=[token])).content.decode()
    assert '<del class="implausible">161/1</del>' in status
    assert "diastolic below 20, pulse pressure above 100" in status

    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    page = client.get(
        reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk])
    ).content.decode()
    table = page.split("<h2>Readings</h2>")[1].split("</table>")[0]
    assert '<tr class="implausible">' in table
    assert "<td><del>161</del></td><td><del>1</del></td>" in table
    assert "implausible: diastolic below 20, pulse pressure above 100" in table
    assert "<td>128</td><td>78</td>" in table
    chart_table = page.split("readings as a table</summary>")[1].split("</table>")[0]
    assert chart_table.count("<tr><td>") == 1  # the chart leaves it out

    study_page = client.get(reverse("admin:measurements_monitoring_study", args=["qa"])).content.decode()
    assert re.search(r"Implausible \(flagged, not classified\): <strong>1</strong>", study_page)
    assert re.search(r"bp-elevated\">Elevated</span> <strong>1</strong>", study_page)
