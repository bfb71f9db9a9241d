"""With a real Celery worker: stopping it shows in /metrics within seconds — the sync lag and the
inbox age rise and the notify queue fills — and starting one again brings them back down."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.withings import linked_connection
from tests.integration.conftest import wait_for
from withings.models import Notification, WithingsConnection
from withings.services.notifications import notify_secret
from withings.tasks import sync_connection

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TOKEN = "integration-metrics-token-0123456789"


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_a_stopped_worker_shows_as_rising_sync_lag_and_inbox_age(
    celery_worker_factory, sandbox, client, settings
):
    settings.METRICS_TOKEN = TOKEN
    app = sandbox.client_id
    lag_max = ("portal_sync_lag_seconds", (("app", app), ("quantile", "1")))
    worker = celery_worker_factory()
    connection = linked_connection(sandbox)
    sync_connection.delay(connection.pk)
    wait_for(
        lambda: WithingsConnection.objects.filter(pk=connection.pk, last_sync_at__isnull=False).exists(),
        timeout=30,
        what="first sync",
    )
    healthy = scrape(client)
    assert healthy[lag_max] < 5
    assert healthy[("portal_inbox_pending", ())] == 0

    worker.stop()
    stopped_at = time.monotonic()
    payload = {"userid": connection.withings_userid, "appli": "4", "startdate": "1", "enddate": "2"}
    assert client.post(f"/withings/notify/{notify_secret()}/", payload).status_code == 200
    time.sleep(3)
    first = scrape(client)
    time.sleep(2)
    second = scrape(client)
    waited = time.monotonic() - stopped_at

    assert second[("portal_inbox_pending", ())] == 1
    assert 5 <= second[("portal_inbox_oldest_pending_age_seconds", ())] <= waited + 1
    assert second[("portal_celery_queue_length", (("queue", "withings_notify"),))] == 1
    # Rising: the later scrape sees a lag larger by about the 2 s between them.
    assert second[lag_max] >= healthy[lag_max] + 5
    assert 1.5 <= second[lag_max] - first[lag_max] <= 4

    celery_worker_factory()
    wait_for(
        lambda: Notification.objects.filter(status=Notification.Status.PROCESSED).exists(),
        timeout=30,
        what="the waiting notification processed by the new worker",
    )
    recovered = scrape(client)
    assert recovered[lag_max] < 5
    assert recovered[("portal_inbox_pending", ())] == 0
    assert recovered[("portal_celery_queue_length", (("queue", "withings_notify"),))] == 0
