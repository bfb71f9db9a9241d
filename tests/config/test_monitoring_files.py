"""docker/: the compose file, Prometheus' configuration and alert rules and the Grafana dashboard
parse, are wired together, and every query names a metric that /metrics really serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from config.health import record_worker_heartbeat

DOCKER = Path(__file__).resolve().parents[2] / "docker"
METRIC = re.compile(r"\b(portal_[a-z0-9_]+)")
TOKEN = "monitoring-files-token-0123456789"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


@pytest.fixture
def served_names(client, settings) -> set[str]:
    """Every sample name /metrics can serve: each family with its exposition suffixes."""
    settings.METRICS_TOKEN = TOKEN
    record_worker_heartbeat()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana/dashboards/portal.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((DOCKER / "prometheus/alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.django_db
def test_every_dashboard_and_alert_query_names_a_served_metric(served_names):
    queries = dashboard_queries() + [rule["expr"] for rule in alert_rules()]
    named = {name for query in queries for name in METRIC.findall(query)}
    assert named, "no portal metric in the queries"
    assert named - served_names == set()
    # The states the issue asks to alert on each have a rule.
    alerted = {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert {
        "portal_sync_lag_seconds",
        "portal_inbox_oldest_pending_age_seconds",
        "portal_withings_token_refresh_failures_total",
    } <= alerted


def test_the_dashboard_panels_are_complete_and_use_the_provisioned_datasource():
    dashboard = json.loads((DOCKER / "grafana/dashboards/portal.json").read_text())
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["title"], panel
        assert panel["targets"], panel
        assert panel["datasource"]["uid"] == uid
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"])
        assert panel["gridPos"]["x"] >= 0
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_alert_rules_are_well_formed():
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_compose_runs_prometheus_and_grafana_on_the_files_here():
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "prometheus", "grafana"} <= set(services)
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], source
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
    assert services["prometheus"]["secrets"] == ["metrics_token"]
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    prometheus = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]
    # web answers Prometheus' Host header.
    assert services["web"]["environment"]["DJANGO_ALLOWED_HOSTS"].endswith(",web")
    env_example = (DOCKER / "env.example").read_text()
    assert "METRICS_TOKEN=" in env_example
    assert "GRAFANA_ADMIN_PASSWORD=" in env_example
