"""The Celery app: configuration from Django settings (namespace CELERY), tasks autodiscovered."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from config.logs import task_finished, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("portal", task_cls="core.tasking:PortalTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every log line of a task carries its id and name (config.logs).
task_prerun.connect(task_started, weak=False)
task_postrun.connect(task_finished, weak=False)


@app.task(name="portal.heartbeat", acks_late=False, ignore_result=True)
def heartbeat() -> None:
    """Beat sends this every 30 s; a worker running it proves worker and beat are alive."""
    from config.health import record_worker_heartbeat

    record_worker_heartbeat()


@app.task(name="portal.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    """Beat, every 5 minutes: every registered time-driven rule as of now (``manage.py tick``).
    Idempotent for an instant, so a redelivered or overlapping run queues nothing twice."""
    from django.utils.timezone import now

    from core.ticking import TickRequest, tick_run

    return sum(line.count for line in tick_run(TickRequest(at=now())))
