import time

import pytest
from django.test import override_settings

from config.health import HEARTBEAT_KEY, record_worker_heartbeat


@pytest.mark.django_db
def test_healthz_reports_each_part(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": "postgresql"}
    assert body["cache"]["ok"] is True


@pytest.mark.django_db
@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_healthz_needs_a_recent_worker_heartbeat(client, redis_url, settings):
    from django.core.cache import cache

    response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json()["worker"] == {"ok": False, "error": "no heartbeat yet"}
    record_worker_heartbeat()
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json()["broker"] == {"ok": True, "mode": "redis"}
    cache.set(HEARTBEAT_KEY, time.time() - settings.WORKER_HEARTBEAT_MAX_AGE - 5)
    assert client.get("/healthz/").status_code == 503


@pytest.mark.django_db
def test_healthz_fails_when_the_broker_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
