"""Thin Celery wrappers: ids in, one service call each."""

from __future__ import annotations

from celery import shared_task

from core.tasking import fan_out

from .services import redcap_projects_due, redcap_push


@shared_task(name="redcap.push_project", acks_late=True, max_retries=0, time_limit=1700, soft_time_limit=1640)
def push_project(project_id: int) -> None:
    """One scheduled push (it retries transient failures per batch itself and logs the outcome)."""
    redcap_push(project_id=project_id, trigger="schedule")


@shared_task(name="redcap.push_due", acks_late=False, ignore_result=True)
def push_due() -> int:
    """Beat: queue a push for every project whose schedule says it is due."""
    return fan_out(push_project, redcap_projects_due())
