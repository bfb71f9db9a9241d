"""`/metrics`: who may read it, and that each metric says what the portal's state and events are."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
import redis
from django.utils.timezone import now
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from tests.factories import WithingsConnectionFactory
from tests.fixtures.withings import linked_connection
from withings.models import Notification, WithingsConnection
from withings.services.sync import connection_sync

TOKEN = "metrics-test-token-" + "x" * 20

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_metrics(settings):
    """Counters of this test only: a key prefix of its own, removed afterwards."""
    settings.METRICS_KEY_PREFIX = f"test:metrics:{secrets.token_hex(6)}"
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    yield
    metrics.store.clear()


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# -- access -----------------------------------------------------------------------------------


def test_without_a_token_the_endpoint_asks_for_one(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert b"portal_" not in response.content


def test_a_wrong_token_is_refused_even_from_an_allowed_address(client, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.0/8"]
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "):
        response = client.get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert b"portal_" not in response.content


def test_nothing_configured_means_closed(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_an_allowed_network_needs_no_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.7"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.8").status_code == 403
    # X-Forwarded-For is not believed: the scraper talks to the web container directly.
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 403


def test_the_right_token_reads_the_metrics(client):
    samples = scrape(client)
    assert value(samples, "portal_inbox_pending") == 0
    assert value(samples, "portal_metrics_collect_errors", part="sync_lag") == 0


# -- state -------------------------------------------------------------------------------------


def test_inbox_pending_and_the_age_of_the_oldest(client):
    Notification.objects.create(dedupe_key="a", userid="1", received_at=now() - dt.timedelta(seconds=300))
    Notification.objects.create(dedupe_key="b", userid="1", received_at=now() - dt.timedelta(seconds=20))
    Notification.objects.create(
        dedupe_key="c", userid="1", status=Notification.Status.PROCESSED,
        received_at=now() - dt.timedelta(seconds=9000),
    )  # fmt: skip
    samples = scrape(client)
    assert value(samples, "portal_inbox_pending") == 2
    assert 300 <= value(samples, "portal_inbox_oldest_pending_age_seconds") < 330


def test_sync_lag_quantiles_per_app_over_the_connections_that_should_sync(client):
    moment = now()
    for seconds in (100, 200, 300, 400, 1100):
        WithingsConnectionFactory(app_client_id="app-a", last_sync_at=moment - dt.timedelta(seconds=seconds))
    WithingsConnectionFactory(
        app_client_id="app-a", status="refresh_failed", last_sync_at=moment - dt.timedelta(seconds=600)
    )
    # Excluded: cannot sync until the participant links again.
    WithingsConnectionFactory(
        app_client_id="app-a", status="needs_reauth", last_sync_at=moment - dt.timedelta(days=30)
    )
    # Never synced: lag counts from the link.
    linked = moment - dt.timedelta(seconds=50)
    WithingsConnectionFactory(app_client_id="app-b", last_sync_at=None, linked_at=linked)

    samples = scrape(client)
    # app-a lags: 100, 200, 300, 400, 600, 1100 (six). p50 at rank 2.5 → 350; p90 at rank 4.5 → 850;
    # p99 at rank 4.95 → 600 + 0.95 × 500 = 1075; max 1100. The scrape comes a moment later: + slack.
    for quantile, expected in (("0.5", 350), ("0.9", 850), ("0.99", 1075), ("1", 1100)):
        got = value(samples, "portal_sync_lag_seconds", app="app-a", quantile=quantile)
        assert expected <= got < expected + 15, (quantile, got)
    assert value(samples, "portal_sync_lag_connections", app="app-a") == 6
    assert 50 <= value(samples, "portal_sync_lag_seconds", app="app-b", quantile="1") < 65
    assert value(samples, "portal_withings_connections", app="app-a", status="active") == 5
    assert value(samples, "portal_withings_connections", app="app-a", status="needs_reauth") == 1
    assert value(samples, "portal_withings_connections", app="app-a", status="refresh_failed") == 1
    assert value(samples, "portal_withings_connections", app="app-b", status="active") == 1


def test_celery_queue_lengths_count_every_priority_list(client, settings, redis_url):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = ("withings_notify", "withings_notify\x06\x163", "withings_backfill")
    try:
        broker.rpush(keys[0], "t1", "t2")
        broker.rpush(keys[1], "t3")
        broker.rpush(keys[2], "t4")
        samples = scrape(client)
    finally:
        broker.delete(*keys)
    assert value(samples, "portal_celery_queue_length", queue="withings_notify") == 3
    assert value(samples, "portal_celery_queue_length", queue="withings_backfill") == 1
    assert value(samples, "portal_celery_queue_length", queue="default") == 0


def test_export_jobs_waiting_and_running(client):
    from measurements.models import ExportJob
    from tests.factories import StudyFactory

    study = StudyFactory()
    for status in ("pending", "running", "running", "done", "failed"):
        ExportJob.objects.create(study=study, format="csv", status=status)
    samples = scrape(client)
    assert value(samples, "portal_export_jobs", status="pending") == 1
    assert value(samples, "portal_export_jobs", status="running") == 2


# -- events ------------------------------------------------------------------------------------


def test_requests_are_counted_by_view_name_and_timed_never_by_path(client):
    for _ in range(3):
        client.get("/healthz/")
    client.post("/withings/notify/not-the-secret/", {"userid": "1"})
    samples = scrape(client)
    assert value(samples, "portal_http_requests_total", view="healthz", method="GET", status="200") == 3
    notify = {"view": "withings_notify", "method": "POST", "status": "404"}
    assert value(samples, "portal_http_requests_total", **notify) == 1
    assert value(samples, "portal_http_request_duration_seconds_count", view="healthz") == 3
    assert value(samples, "portal_http_request_duration_seconds_bucket", view="healthz", le="+Inf") == 3
    assert not any("not-the-secret" in str(key) for key in samples)


def test_upstream_calls_601s_and_rate_limiter_waits_by_app(client, sandbox):
    connection = linked_connection(sandbox)
    connection_sync(connection_id=connection.pk)
    sandbox.state.set_fault("601", endpoint="measure", count=1, wait_seconds=1)
    WithingsConnection.objects.filter(pk=connection.pk).update(sync_watermark=1)  # not an identical call
    with pytest.raises(Exception):  # noqa: B017, PT011 — the service's own error type is not the point
        connection_sync(connection_id=connection.pk)
    samples = scrape(client)
    app = sandbox.client_id
    ok = value(samples, "portal_withings_calls_total", app=app, endpoint="measure getmeas", outcome="ok")
    limited = value(
        samples, "portal_withings_calls_total", app=app, endpoint="measure getmeas", outcome="rate_limited"
    )
    assert (ok, limited) == (1, 1)
    assert value(samples, "portal_withings_ratelimit_wait_seconds_count", app=app) == 2


def test_refresh_failures_are_counted_by_kind(client, sandbox):
    from withings.services.tokens import connection_refresh

    connection = linked_connection(sandbox)
    sandbox.state.set_fault("http5xx", endpoint="oauth2", count=1, http_status=500)
    with pytest.raises(Exception):  # noqa: B017, PT011
        connection_refresh(connection_id=connection.pk, force=True)
    samples = scrape(client)
    name = "portal_withings_token_refresh_failures_total"
    assert value(samples, name, app=sandbox.client_id, kind="transient") == 1
    assert WithingsConnection.objects.get(pk=connection.pk).status == "refresh_failed"


def test_a_dead_redis_never_fails_a_request(client, settings):
    working = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    metrics.store._paused_until = 0.0
    try:
        assert client.get("/healthz/").status_code == 503  # the broker is down: said, not raised
        metrics.inc("portal_messages", channel="sms", status="sent")
        assert metrics.store._paused_until > 0  # the next samples skip Redis for a while
    finally:
        metrics.store._paused_until = 0.0
        settings.REDIS_URL = working


def test_messages_finished_are_counted_by_channel_and_status(client, settings):
    from messaging import dispatch, services
    from messaging.models import Message, Reason
    from tests.factories import ParticipantFactory
    from tests.fixtures.messaging import give_contact

    first, second = ParticipantFactory(), ParticipantFactory()
    for participant in (first, second):
        give_contact(participant, email=f"sam{participant.pk}@example.net")
    sent = services.message_queue(participant=first, reason=Reason.ONE_OFF, dedupe_key="one-off:1")
    assert dispatch.send_message(sent.pk) == Message.Status.SENT
    # An unreachable SMTP server: the first try is retried later (not counted), the last one fails.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    settings.MESSAGING_MAX_ATTEMPTS = 2
    failing = services.message_queue(participant=second, reason=Reason.ONE_OFF, dedupe_key="one-off:1")
    assert dispatch.send_message(failing.pk) == Message.Status.QUEUED
    failing.refresh_from_db()
    assert dispatch.send_message(failing.pk, now=failing.due_at) == Message.Status.FAILED

    samples = scrape(client)
    assert value(samples, "portal_messages_total", channel="email", status="sent") == 1
    assert value(samples, "portal_messages_total", channel="email", status="failed") == 1
    assert value(samples, "portal_messages_total", channel="email", status="queued") is None
