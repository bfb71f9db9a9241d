"""The monitoring stack of docker/compose.yml with its real parts, on this machine: Prometheus (Debian's
build) with docker/prometheus/prometheus.yml and alerts.yml scrapes the running portal's /metrics with
the bearer token file, every Grafana dashboard query evaluates, and SIGKILLing the Celery worker shows
in Prometheus as sync lag, inbox age and heartbeat age rising within a minute."""

from __future__ import annotations

import json
import time

import pytest
import requests

from config.celery_app import heartbeat
from tests.fixtures.withings import linked_connection
from tests.integration.conftest import wait_for
from tests.prometheus import DOCKER, Prometheus, local_config
from withings.models import WithingsConnection
from withings.services.notifications import notify_secret

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
HEALTHY_SECONDS = 22
TOKEN = "prometheus-stack-token-0123456789abcdef"
#: Panels that must show data once the portal has served webhooks and synced (the others, e.g. 601s or
#: messages, are empty until such an event happens; their queries must still evaluate).
MUST_SHOW = {
    "Sync lag per Withings app",
    "Webhook inbox",
    "Webhook latency (POST /withings/notify/)",
    "Requests by status",
    "Requests by view (top 10)",
    "Withings calls by app and outcome",
    "Connections by status",
    "Celery queue lengths",
    "Worker heartbeat age",
    "Export jobs",
}


@pytest.fixture
def prometheus(live_server, broker_url, settings, tmp_path):
    settings.METRICS_TOKEN = TOKEN
    # One Redis for the portal's processes, as in production: the worker's counters and heartbeat
    # (it runs with REDIS_URL=broker_url) are what this process's /metrics reads.
    settings.REDIS_URL = broker_url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": broker_url}}
    token_file = tmp_path / "metrics_token"
    token_file.write_text(TOKEN + "\n")  # as a secret file usually ends
    wrong = tmp_path / "wrong_token"
    wrong.write_text("not-the-token-0123456789abcdef")
    target = live_server.url.removeprefix("http://")
    impostor = {
        "job_name": "wrong-token",
        "metrics_path": "/metrics",
        "authorization": {"type": "Bearer", "credentials_file": str(wrong)},
        "static_configs": [{"targets": [target]}],
    }
    running = Prometheus(local_config(target, token_file, extra_jobs=[impostor]), tmp_path)
    yield running
    running.stop()


def dashboard_panels() -> list[dict]:
    return json.loads((DOCKER / "grafana/dashboards/portal.json").read_text())["panels"]


def test_prometheus_scrapes_the_portal_and_sees_a_killed_worker_within_a_minute(
    celery_worker_factory, sandbox, live_server, prometheus
):
    app = sandbox.client_id
    lag = f'portal_sync_lag_seconds{{job="portal", app="{app}", quantile="1"}}'  # the max over connections
    notify_url = f"{live_server.url}/withings/notify/{notify_secret()}/"
    worker = celery_worker_factory()
    connection = linked_connection(sandbox)
    http = requests.Session()

    def world_goes_on() -> None:
        """One second of the world: Withings notifies (a new measurement), beat asks for a heartbeat."""
        moment = int(time.time() * 1000)  # each delivery a new window, as Withings sends them
        payload = {
            "userid": connection.withings_userid,
            "appli": 4,
            "startdate": moment,
            "enddate": moment + 1,
        }
        assert http.post(notify_url, data=payload, timeout=5).status_code == 200
        heartbeat.delay()
        time.sleep(1)

    # Healthy: syncs follow the notifications, at most one per identical-call window (10 s) per
    # connection, so the lag saws between 0 and about 12 s.
    wait_for(
        lambda: world_goes_on() or WithingsConnection.objects.get(pk=connection.pk).last_sync_at,
        timeout=60, interval=0, what="first sync",
    )  # fmt: skip
    for _ in range(HEALTHY_SECONDS):
        world_goes_on()
    assert prometheus.value('up{job="portal"}') == 1
    assert prometheus.value('up{job="wrong-token"}') == 0  # the bearer token is what lets it in
    (series,) = prometheus.api("query", query=f"{lag}[{HEALTHY_SECONDS}s]")["result"]
    healthy = [float(value) for _, value in series["values"]]
    assert len(healthy) >= HEALTHY_SECONDS - 3, healthy
    assert max(healthy) < 15, healthy
    assert min(healthy) < 5, healthy  # it came back down: syncs happen

    # The rules load and evaluate against the live series without error.
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 10
    assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]

    # Every dashboard query is valid PromQL for Prometheus and the panels that must show data do.
    for panel in dashboard_panels():
        results = [prometheus.query(target["expr"]) for target in panel["targets"]]
        if panel["title"] in MUST_SHOW:
            assert any(results), panel["title"]

    worker.kill()  # SIGKILL, as the OOM killer would
    killed = time.monotonic()

    def shows_the_dead_worker() -> bool:
        world_goes_on()
        rising = prometheus.value(f"deriv({lag}[15s])")
        return (
            (prometheus.value(lag) or 0) > 25  # past anything the healthy sawtooth reaches
            and rising is not None
            and 0.7 < rising < 1.3  # one second of lag per second
            and (prometheus.value("portal_inbox_oldest_pending_age_seconds") or 0) > 15
            and (prometheus.value("portal_worker_heartbeat_age_seconds") or 0) > 15
            and (prometheus.value('portal_celery_queue_length{queue="withings_notify"}') or 0) >= 10
        )

    wait_for(shows_the_dead_worker, timeout=60, interval=0, what="Prometheus showing the killed worker")
    assert time.monotonic() - killed < 60
