"""docker/: the compose file, Prometheus' configuration and alert rules and the Grafana dashboard
parse, are wired together, and every query names a metric that /metrics really serves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


def compose_spec_check(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_compose_spec_and_every_variable_is_in_env_example(tmp_path):
    """Validated against the Compose Specification's JSON schema (check-jsonschema vendors it): what
    `docker compose up` would refuse. No Docker engine runs on CI, so this stands in for `config`."""
    result = compose_spec_check(DOCKER / "compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The schema catches a mistake: a misspelt depends_on condition.
    broken = tmp_path / "compose.yml"
    compose = (DOCKER / "compose.yml").read_text()
    broken.write_text(compose.replace("service_completed_successfully", "service_done"))
    refused = compose_spec_check(broken)
    assert refused.returncode == 1
    assert "service_done" in refused.stdout
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", compose))
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "DJANGO_ALLOWED_HOSTS"} <= used
    defined = set(re.findall(r"^([A-Z0-9_]+)=", (DOCKER / "env.example").read_text(), re.M))
    assert used - defined == set()
    secrets = {spec["environment"] for spec in yaml.safe_load(compose)["secrets"].values()}
    assert secrets - defined == set()
