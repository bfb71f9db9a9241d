"""A real Prometheus (Debian's `prometheus` package: `prometheus` and `promtool`) run on the files in
docker/prometheus/, with only what the compose network provides swapped for this machine: the target
(`web:8000`), the token file (the compose secret `/run/secrets/metrics_token`) and the rules' path."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
PROMETHEUS_DIR = DOCKER / "prometheus"
#: What docker/compose.yml gives Prometheus: the web service and the secret's mount point.
COMPOSE_TARGET = "web:8000"
COMPOSE_TOKEN_FILE = "/run/secrets/metrics_token"
COMPOSE_RULES = "/etc/prometheus/alerts.yml"


def binary(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` not found: install Debian's prometheus package (.ci/run does).")
    return path


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def shipped_config() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())


def local_config(
    target: str, token_file: Path, *, interval: str = "1s", extra_jobs: list | None = None
) -> Any:
    """docker/prometheus/prometheus.yml pointed at `target` with `token_file`; nothing else changed
    but the scrape/evaluation interval (15 s in production, shorter so a test sees a trend)."""
    config = shipped_config()
    assert config["rule_files"] == [COMPOSE_RULES]
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    (job,) = config["scrape_configs"]
    assert job["authorization"]["credentials_file"] == COMPOSE_TOKEN_FILE
    assert job["static_configs"] == [{"targets": [COMPOSE_TARGET]}]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] += extra_jobs or []
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, config: dict, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        check = promtool("check", "config", str(self.config_file), cwd=workdir)
        assert check.returncode == 0, check.stdout + check.stderr
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary("prometheus"), f"--config.file={self.config_file}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={self.url[7:]}"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus did not start: {self.log.read_text()[-2000:]}")

    def api(self, path: str, **params: Any) -> Any:
        body = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        """The single value of an instant query (None when it has no series)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
