"""Export jobs whose task died are re-queued by the scanner and finish; live ones are left alone;
`/healthz/` shows stalled work meanwhile."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.models import ExportJob
from measurements.tasks import EXPORT_TIME_LIMIT, resume_exports
from tests.factories import ParticipantFactory, ReadingFactory, StudyFactory, WithingsConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="resume")
    for _ in range(3):
        ReadingFactory(participant=ParticipantFactory(study=study))
    return study


def job(study, **state) -> ExportJob:
    created = export_job_create(actor=None, study=study, fmt="csv", filters=ExportFilters(), run=False)
    ExportJob.objects.filter(pk=created.pk).update(**state)
    return created


def ago(**kwargs) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def test_jobs_whose_task_died_are_resumed_once_and_finish(study):
    lost_in_queue = job(study, queued_at=ago(minutes=11))
    killed = job(study, status=ExportJob.Status.RUNNING, started_at=ago(hours=1), queued_at=ago(hours=1))
    queued_now = job(study)
    running_now = job(
        study, status=ExportJob.Status.RUNNING, started_at=ago(minutes=5), queued_at=ago(minutes=5)
    )

    assert resume_exports() == 2
    by_pk = {j.pk: j for j in ExportJob.objects.all()}
    assert by_pk[lost_in_queue.pk].status == ExportJob.Status.DONE
    assert by_pk[killed.pk].status == ExportJob.Status.DONE
    assert by_pk[killed.pk].rows_done == 3
    assert by_pk[queued_now.pk].status == ExportJob.Status.PENDING  # its task is still coming
    assert by_pk[running_now.pk].status == ExportJob.Status.RUNNING  # may still be running
    assert resume_exports() == 0


def test_a_running_job_is_only_resumed_after_the_task_time_limit(study):
    running = job(
        study,
        status=ExportJob.Status.RUNNING,
        started_at=ago(seconds=EXPORT_TIME_LIMIT - 30),
        queued_at=ago(seconds=EXPORT_TIME_LIMIT - 30),
    )
    assert resume_exports() == 0
    ExportJob.objects.filter(pk=running.pk).update(
        started_at=ago(seconds=EXPORT_TIME_LIMIT + 61), queued_at=ago(seconds=EXPORT_TIME_LIMIT + 61)
    )
    assert resume_exports() == 1


def test_healthz_shows_stalled_backfills_and_stuck_exports(client, study, settings):
    assert client.get("/healthz/").json()["work"] == {"ok": True, "stalled_backfills": 0, "stuck_exports": 0}
    job(study, status=ExportJob.Status.RUNNING, started_at=ago(hours=1), queued_at=ago(hours=1))
    stall = settings.WITHINGS_BACKFILL_STALL_SECONDS
    WithingsConnectionFactory(backfill_completed_at=None, backfill_progress_at=ago(seconds=stall + 120))
    WithingsConnectionFactory(backfill_completed_at=None, backfill_progress_at=ago(seconds=10))  # moving
    WithingsConnectionFactory(backfill_completed_at=timezone.now())  # done

    response = client.get("/healthz/")
    assert response.status_code == 200  # the server is fine; the scanners re-queue the work
    body = response.json()
    assert body["status"] == "degraded"
    assert body["work"]["ok"] is False
    assert body["work"]["stalled_backfills"] == 1
    assert body["work"]["stuck_exports"] == 1
    assert stall + 110 <= body["work"]["oldest_backfill_stall_seconds"] <= stall + 200
