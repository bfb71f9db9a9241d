"""The Celery settings (config/settings/_celery.py) name tasks and queues that exist."""

from __future__ import annotations

from django.conf import settings

from config.celery_app import app


def test_every_scheduled_and_routed_task_is_registered_and_every_route_has_a_declared_queue():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - set(app.tasks) == set()
    assert set(settings.CELERY_TASK_ROUTES) - set(app.tasks) == set()
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= declared
    assert settings.CELERY_TASK_DEFAULT_QUEUE in declared
