"""Thin Celery wrappers: ids in, one service call each."""

from __future__ import annotations

from celery import shared_task

from measurements.exports.services import export_job_run

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
