"""docker/prometheus/ through Prometheus' own tool: the configuration and the alert rules load, and the
rules' unit tests (alerts_test.yml: a dead worker, stuck syncs, an inbox backlog, refresh failures,
601s, each with a healthy twin that must stay silent) pass."""

from __future__ import annotations

import yaml

from tests.prometheus import PROMETHEUS_DIR, local_config, promtool


def test_the_alert_rules_load():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_the_alert_rules_fire_when_they_should_and_only_then():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # Every rule has a scenario where it fires and one where it stays silent.
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    scenarios = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    cases = [case for test in scenarios["tests"] for case in test["alert_rule_test"]]
    assert {case["alertname"] for case in cases if case["exp_alerts"]} == names
    assert {case["alertname"] for case in cases if not case["exp_alerts"]} == names


def test_a_broken_threshold_fails_the_rule_tests(tmp_path):
    """The unit tests can fail: the worker alert waiting 5 minutes instead of 2 is caught."""
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text()
    assert "portal_worker_heartbeat_age_seconds > 120" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("seconds > 120", "seconds > 300"))
    (tmp_path / "alerts_test.yml").write_text((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "alertname: PortalWorkerDown" in result.stdout + result.stderr


def test_the_scrape_config_loads_with_its_token_file(tmp_path):
    token = tmp_path / "metrics_token"
    token.write_text("t" * 32)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config("127.0.0.1:8000", token)))
    result = promtool("check", "config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
