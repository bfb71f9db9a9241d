"""Thin Celery wrappers: ids in, one service call each."""

from __future__ import annotations

from celery import shared_task

from core.tasking import fan_out
from measurements.exports.services import export_job_run, export_jobs_to_resume

# Below the broker's visibility_timeout (1800 s): a longer task would be delivered twice.
EXPORT_TIME_LIMIT = 1700


@shared_task(
    name="measurements.run_export",
    acks_late=True,
    max_retries=0,
    time_limit=EXPORT_TIME_LIMIT,
    soft_time_limit=EXPORT_TIME_LIMIT - 60,
    ignore_result=True,
)
def run_export(job_id: int) -> None:
    export_job_run(job_id=job_id)


@shared_task(name="measurements.resume_exports", acks_late=False, ignore_result=True)
def resume_exports() -> int:
    """Beat: re-queue export jobs whose task died (still waiting long after they were queued, or
    "running" for longer than the task's hard time limit allows: that run is provably over)."""
    return fan_out(run_export, export_jobs_to_resume(running_longer_than=EXPORT_TIME_LIMIT + 60))


# -- monitoring (adherence rollup, alerts) ---------------------------------------------------------

#: Per-study monitoring tasks: idempotent recomputations. A database that drops its connections is
#: retried by the base task class (core.tasking.PortalTask), like every task's.
DB_RETRY = {"acks_late": True, "ignore_result": True}


@shared_task(name="measurements.monitoring_nightly", acks_late=True, max_retries=0, ignore_result=True)
def monitoring_nightly() -> int:
    """Beat (daily): zero rows for the missed days of every active study."""
    from measurements.monitoring.tasks_support import active_study_ids

    return fan_out(adherence_fill_study, active_study_ids())


@shared_task(name="measurements.adherence_fill_study", **DB_RETRY)
def adherence_fill_study(study_id: int) -> int:
    from measurements.monitoring.adherence import adherence_fill_missing

    return adherence_fill_missing(study_id=study_id)


@shared_task(name="measurements.adherence_rebuild_study", time_limit=EXPORT_TIME_LIMIT, **DB_RETRY)
def adherence_rebuild_study(study_id: int) -> int:
    """After a protocol change: recompute every participant's rollup."""
    from measurements.monitoring.adherence import adherence_rebuild_study as rebuild

    return rebuild(study_id=study_id)


@shared_task(name="measurements.evaluate_alerts", acks_late=True, max_retries=0, ignore_result=True)
def evaluate_alerts() -> int:
    """Beat (hourly): queue one evaluation per active study."""
    from measurements.monitoring.tasks_support import active_study_ids

    return fan_out(evaluate_study_alerts, active_study_ids())


@shared_task(name="measurements.evaluate_study_alerts", **DB_RETRY)
def evaluate_study_alerts(study_id: int) -> int:
    """No data, link broken, low battery, cuff not synced: raise once, resolve when cleared."""
    from measurements.monitoring.alerts import alerts_evaluate

    result = alerts_evaluate(study_id=study_id)
    return result.raised
