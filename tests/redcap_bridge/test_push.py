"""Pushing to REDCap against the fake REDCap over HTTP: the records REDCap ends up with, idempotence
(a second push changes nothing, a forced re-send changes nothing either), stable instances, summaries,
retries of transient failures and REDCap's refusals in the push log."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from cohorts.models import AuditEvent
from redcap_bridge.models import RedcapPushedRow, RedcapPushLog
from redcap_bridge.services import redcap_push
from tests.factories import ParticipantFactory, ReadingFactory, StudyFactory

from .conftest import configure

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def no_sleep(_seconds: float) -> None:
    pass


@pytest.fixture
def study():
    study = StudyFactory(slug="bp-study")
    a = ParticipantFactory(study=study, code="A01", timezone="Europe/Paris")
    b = ParticipantFactory(study=study, code="B02", timezone="America/New_York")
    ReadingFactory(participant=a, measured_at=dt.datetime(2024, 3, 1, 7, 0, tzinfo=UTC))
    ReadingFactory(
        participant=a, measured_at=dt.datetime(2024, 3, 1, 19, 30, 15, tzinfo=UTC),
        systolic=Decimal("131.5"), diastolic=Decimal("82"), pulse=None,
    )  # fmt: skip
    ReadingFactory(
        participant=b, measured_at=dt.datetime(2024, 3, 2, 12, 0, tzinfo=UTC),
        systolic=Decimal("140"), diastolic=Decimal("90"), pulse=Decimal("70"), irregular_heartbeat=True,
    )  # fmt: skip
    # Not study data: a CSV copy of an API reading, and a reading deleted upstream.
    first = a.readings.order_by("measured_at").first()
    ReadingFactory(participant=a, source="csv", grpid=None, duplicate_of=first, measured_at=first.measured_at)
    ReadingFactory(participant=b, deleted_upstream=True, measured_at=dt.datetime(2024, 3, 3, tzinfo=UTC))
    return study


# Worked out by hand: local times (Paris is UTC+1 in March, New York UTC-5 before 10 March), integer
# fields rounded half up (131.5 → 132), unknown values left blank (so REDCap keeps nothing for them).
EXPECTED = {
    ("BP-A01", "", "home_bp", 1): {
        "bp_datetime": "2024-03-01 08:00:00", "bp_sys": "123", "bp_dia": "79", "bp_pulse": "64",
        "bp_source": "api",
    },
    ("BP-A01", "", "home_bp", 2): {
        "bp_datetime": "2024-03-01 20:30:15", "bp_sys": "132", "bp_dia": "82", "bp_source": "api",
    },
    ("BP-B02", "", "home_bp", 1): {
        "bp_datetime": "2024-03-02 07:00:00", "bp_sys": "140", "bp_dia": "90", "bp_pulse": "70",
        "bp_source": "api", "bp_irregular": "1",
    },
}  # fmt: skip


def test_a_push_creates_the_expected_records_and_a_second_push_changes_nothing(study, fake_redcap):
    project, remote = configure(study, fake_redcap)

    log = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert remote.data == EXPECTED
    assert (log.status, log.rows_sent, log.rows_unchanged, log.records_reported, log.batches) == (
        RedcapPushLog.Status.OK, 3, 0, 2, 1,
    )  # fmt: skip
    changes, imports = len(remote.changes), remote.imports

    again = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert (again.status, again.rows_sent, again.rows_unchanged) == (RedcapPushLog.Status.OK, 0, 3)
    assert remote.data == EXPECTED
    assert (len(remote.changes), remote.imports) == (changes, imports)  # not even an import call

    # Sending everything again (same instances, overwriteBehavior=normal) changes nothing in REDCap.
    forced = redcap_push(project_id=project.pk, trigger="command", resend=True, sleep=no_sleep)
    assert (forced.status, forced.rows_sent) == (RedcapPushLog.Status.OK, 3)
    assert remote.imports == imports + 1
    assert len(remote.changes) == changes
    assert remote.data == EXPECTED


def test_instances_are_kept_when_an_older_reading_arrives_later(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)
    a = study.participants.get(code="A01")
    # A back-filled reading older than both pushed ones: it gets the next instance, the others keep theirs.
    ReadingFactory(
        participant=a, measured_at=dt.datetime(2024, 2, 28, 6, 0, tzinfo=UTC), systolic=Decimal("118")
    )

    log = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert (log.rows_sent, log.rows_unchanged) == (1, 3)
    assert remote.data[("BP-A01", "", "home_bp", 3)]["bp_datetime"] == "2024-02-28 07:00:00"
    assert remote.data[("BP-A01", "", "home_bp", 3)]["bp_sys"] == "118"
    assert {k: v for k, v in remote.data.items() if k[3] != 3 or k[0] != "BP-A01"} == EXPECTED


def test_a_changed_reading_is_sent_again_to_its_own_instance(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)
    reading = study.participants.get(code="B02").readings.get(deleted_upstream=False)
    reading.systolic = Decimal("141")
    reading.save()

    log = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert (log.rows_sent, log.rows_unchanged) == (1, 2)
    assert remote.data[("BP-B02", "", "home_bp", 1)]["bp_sys"] == "141"
    assert remote.changes[-1] == ("BP-B02", "", "home_bp", 1, "bp_sys", "140", "141")
    assert len(remote.data) == 3


def test_since_limits_the_push_to_readings_measured_from_that_day(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    log = redcap_push(project_id=project.pk, trigger="command", since=dt.date(2024, 3, 2), sleep=no_sleep)
    assert log.rows_sent == 1
    assert set(remote.data) == {("BP-B02", "", "home_bp", 1)}


def test_a_dry_run_sends_nothing_and_keeps_nothing(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    calls = len(fake_redcap.state.calls)

    log = redcap_push(project_id=project.pk, trigger="command", dry_run=True, sleep=no_sleep)

    assert (log.status, log.rows_sent) == (RedcapPushLog.Status.DRY_RUN, 3)
    assert remote.data == {}
    assert len(fake_redcap.state.calls) == calls
    assert not RedcapPushedRow.objects.filter(project=project).exists()


def test_summary_mode_sends_one_instance_per_protocol_period(fake_redcap):
    study = StudyFactory()
    p = ParticipantFactory(study=study, code="S1", timezone="Europe/Paris", start_date=dt.date(2024, 3, 1))
    for when, sys_, dia in (
        (dt.datetime(2024, 3, 1, 7, tzinfo=UTC), "120", "80"),
        (dt.datetime(2024, 3, 1, 7, 5, tzinfo=UTC), "130", "84"),
        (dt.datetime(2024, 3, 3, 18, tzinfo=UTC), "125", "81"),
        (dt.datetime(2024, 3, 9, 7, tzinfo=UTC), "140", "90"),
    ):
        ReadingFactory(participant=p, measured_at=when, systolic=Decimal(sys_), diastolic=Decimal(dia))
    project, remote = configure(study, fake_redcap, mode="summary", instrument="bp_week", prefix="")

    log = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    # Week 1 (1–7 March): 3 readings on 2 days, means 375/3 = 125 and 245/3 = 81.67 → 81.7.
    assert remote.data == {
        ("S1", "", "bp_week", 1): {
            "wk_start": "2024-03-01", "wk_end": "2024-03-07", "wk_n": "3", "wk_days": "2",
            "wk_sys": "125", "wk_dia": "81.7",
        },
        ("S1", "", "bp_week", 2): {
            "wk_start": "2024-03-08", "wk_end": "2024-03-14", "wk_n": "1", "wk_days": "1",
            "wk_sys": "140", "wk_dia": "90",
        },
    }  # fmt: skip
    assert log.rows_sent == 2
    assert redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep).rows_sent == 0


def test_transient_failures_are_retried_a_bounded_number_of_times(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    slept = []
    fake_redcap.state.fail_next(2)  # two proxy error pages, then REDCap answers

    log = redcap_push(project_id=project.pk, trigger="command", sleep=slept.append)

    assert (log.status, log.retries, log.rows_sent) == (RedcapPushLog.Status.OK, 2, 3)
    assert slept == [2.0, 8.0]
    assert remote.data == EXPECTED


def test_a_push_that_runs_out_of_retries_fails_and_the_next_one_uses_the_same_instances(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    fake_redcap.state.fail_next(3)

    failed = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert (failed.status, failed.rows_sent, failed.retries) == (RedcapPushLog.Status.FAILED, 0, 2)
    assert "other than JSON" in failed.error
    assert remote.data == {}
    instances = dict(RedcapPushedRow.objects.filter(project=project).values_list("source_key", "instance"))

    ok = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert (ok.status, ok.rows_sent) == (RedcapPushLog.Status.OK, 3)
    assert (
        dict(RedcapPushedRow.objects.filter(project=project).values_list("source_key", "instance"))
        == instances
    )
    assert remote.data == EXPECTED


def test_a_bad_token_fails_visibly_with_redcaps_own_words_and_never_the_token(study, fake_redcap, capsys):
    project, remote = configure(study, fake_redcap)
    token = remote.token
    del fake_redcap.state.projects[token]  # the token was revoked in REDCap

    with pytest.raises(CommandError, match="You do not have permissions to use the API"):
        call_command("redcap_push", study.slug)

    log = RedcapPushLog.objects.get(project=project)
    assert log.status == RedcapPushLog.Status.FAILED
    assert log.error == "REDCap refused: You do not have permissions to use the API"
    assert (log.rows_sent, log.retries) == (0, 0)  # a refusal is not retried
    audit = AuditEvent.objects.get(action="redcap.pushed", study=study)
    assert audit.detail["status"] == "failed"
    assert token not in str(audit.detail)
    assert token not in log.error
    assert token not in capsys.readouterr().out


def test_a_push_while_another_runs_is_skipped(study, fake_redcap):
    project, remote = configure(study, fake_redcap)
    type(project).objects.filter(pk=project.pk).update(push_started_at=dt.datetime.now(UTC))

    log = redcap_push(project_id=project.pk, trigger="schedule", sleep=no_sleep)

    assert log.status == RedcapPushLog.Status.SKIPPED
    assert remote.data == {}


def test_the_command_pushes_and_reports(study, fake_redcap, capsys):
    configure(study, fake_redcap)
    call_command("redcap_push", study.slug, "--dry-run")
    assert "would send 3 rows" in capsys.readouterr().out
    call_command("redcap_push", study.slug)
    assert "sent 3 rows in 1 batches" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no REDCap project"):
        call_command("redcap_push", StudyFactory().slug)


def test_pushing_the_demo_study_creates_one_instance_per_reading_and_a_second_push_changes_nothing(
    fake_redcap, settings
):
    from cohorts.models import Study
    from measurements.models import BloodPressureReading

    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    demo = Study.objects.get(slug="demo")
    project, remote = configure(demo, fake_redcap)
    # Expected, from the readings themselves: per participant, instances 1..n in time order.
    per_code: dict[str, list] = {}
    for code, tz, measured_at, systolic in (
        BloodPressureReading.objects.filter(
            participant__study=demo, duplicate_of__isnull=True, deleted_upstream=False
        )
        .order_by("participant__code", "measured_at", "pk")
        .values_list("participant__code", "participant__timezone", "measured_at", "systolic")
    ):
        local = measured_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
        per_code.setdefault(code, []).append((local, str(int(systolic + Decimal("0.5")))))
    expected = {
        (f"BP-{code}", "", "home_bp", n): values
        for code, rows in per_code.items()
        for n, values in enumerate(rows, start=1)
    }
    assert len(expected) > 20  # the demo has readings to push

    log = redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep)

    assert log.status == RedcapPushLog.Status.OK
    assert log.rows_sent == len(expected)
    # REDCap counts the records of each import call: a participant whose readings span two batches
    # of 500 is counted in both.
    in_order = [key[0] for key in expected]  # participant code order, then instance (time) order
    batches = [in_order[i : i + project.batch_size] for i in range(0, len(in_order), project.batch_size)]
    assert log.records_reported == sum(len(set(batch)) for batch in batches)
    assert log.batches == len(batches)
    got = {key: (row["bp_datetime"], row["bp_sys"]) for key, row in remote.data.items()}
    assert got == expected
    changes = len(remote.changes)
    assert redcap_push(project_id=project.pk, trigger="command", sleep=no_sleep).rows_sent == 0
    assert redcap_push(
        project_id=project.pk, trigger="command", resend=True, sleep=no_sleep
    ).rows_sent == len(expected)
    assert len(remote.changes) == changes


def test_only_scheduled_projects_past_their_interval_are_due(fake_redcap):
    from redcap_bridge.models import RedcapProject
    from redcap_bridge.services import redcap_projects_due

    at = dt.datetime(2026, 6, 1, 12, tzinfo=UTC)
    never, recent, old, manual = (configure(StudyFactory(), fake_redcap)[0] for _ in range(4))
    RedcapProject.objects.filter(pk__in=[never.pk, recent.pk, old.pk]).update(
        auto_push=True, push_every_hours=6
    )
    RedcapProject.objects.filter(pk=recent.pk).update(last_push_at=at - dt.timedelta(hours=5))
    RedcapProject.objects.filter(pk=old.pk).update(last_push_at=at - dt.timedelta(hours=6))
    RedcapProject.objects.filter(pk=manual.pk).update(last_push_at=None)

    assert sorted(redcap_projects_due(at)) == sorted([never.pk, old.pk])
