"""The Celery app: configuration from Django settings (namespace CELERY), tasks autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("portal", task_cls="core.tasking:PortalTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="portal.heartbeat", acks_late=False, ignore_result=True)
def heartbeat() -> None:
    """Beat sends this every 30 s; a worker running it proves worker and beat are alive."""
    from config.health import record_worker_heartbeat

    record_worker_heartbeat()
