"""`docker compose -f docker/compose.yml up` without a Docker engine (none runs on CI): the services'
own commands — read from compose.yml and the Dockerfile's CMD, not retyped — run as processes with the
image's settings (config.settings.production) and docker/env.example filled in, on this machine's
PostgreSQL and Redis, and Prometheus runs on docker/prometheus/. What compose would add (containers,
the `web`/`postgres`/`redis` host names, volumes) is swapped for local equivalents; nothing else.

It proves what `up` must bring: migrate completes, web passes compose's own healthcheck (which needs
beat's heartbeat through a worker), Prometheus scrapes /metrics over plain http with the secret token
(no HTTPS redirect, no Host refusal), the alert rules evaluate, every line the services log is JSON
and carries no secret, and a SIGKILLed worker shows as a rising heartbeat age within a minute."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests
import yaml
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from tests.integration.conftest import wait_for
from tests.prometheus import DOCKER, Prometheus, local_config

pytestmark = pytest.mark.integration
ROOT = DOCKER.parent
REDIS_DB = 13
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def dockerfile_cmd() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", "")
    (line,) = [line for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def dockerfile_env() -> dict[str, str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", "")
    (line,) = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in shlex.split(line.removeprefix("ENV ")))


def filled_env_file() -> dict[str, str]:
    """docker/env.example as an operator fills it in: every secret set, the rest as shipped."""
    values = {}
    for line in (DOCKER / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    values |= {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONTACT_LOOKUP_KEY": secrets.token_urlsafe(32),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "WITHINGS_CLIENT_ID": "compose-test-app",
        "WITHINGS_CLIENT_SECRET": secrets.token_urlsafe(24),
    }
    return values


class Stack:
    """The services of compose.yml as processes; `env_file` + `environment` as compose merges them."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str) -> None:
        self.tmp, self.procs, self.logs = tmp, {}, {}
        self.file = compose()
        self.env_file = filled_env_file()
        portal = self.file["x-portal"]
        environment = {name: self._interpolate(value) for name, value in portal["environment"].items()}
        # Compose's network names are this machine's services; Prometheus' Host header is 127.0.0.1.
        assert urlsplit(environment["DATABASE_URL"]).hostname == "postgres"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        environment["DATABASE_URL"] = database_url
        environment["REDIS_URL"] = redis_url
        assert environment["DJANGO_ALLOWED_HOSTS"].endswith(",web")
        environment["DJANGO_ALLOWED_HOSTS"] += ",127.0.0.1"
        image = dockerfile_env()
        self.env = {
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": image["DJANGO_SETTINGS_MODULE"],
            "PYTHONUNBUFFERED": "1",
            "MEDIA_ROOT": str(tmp / "media"),
            **self.env_file,
            **environment,
        }
        self.port = _free_port()

    def _interpolate(self, value: str) -> str:
        for name, setting in self.env_file.items():
            value = value.replace("${" + name + "}", setting)
        assert "${" not in value, value
        return value

    def command(self, service: str) -> list[str]:
        spec = self.file["services"][service]
        argv = shlex.split(spec["command"]) if "command" in spec else dockerfile_cmd()
        argv = [a.replace("0.0.0.0:8000", f"127.0.0.1:{self.port}") for a in argv]
        argv = [
            f"--schedule={self.tmp / 'celerybeat-schedule'}" if a.startswith("--schedule=") else a
            for a in argv
        ]
        return [sys.executable if argv[0] == "python" else str(BIN / argv[0]), *argv[1:]]

    def run(self, service: str) -> subprocess.CompletedProcess[str]:
        return self._run(self.command(service))

    def build(self) -> subprocess.CompletedProcess[str]:
        """The image's build step that the services rely on: the Dockerfile's RUN with collectstatic."""
        text = (DOCKER / "Dockerfile").read_text().replace("\\\n", "")
        (line,) = [line for line in text.splitlines() if line.startswith("RUN ") and "collectstatic" in line]
        words = shlex.split(line.removeprefix("RUN "))
        script = words[words.index("sh") + 2]
        return self._run(["sh", "-c", script])

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)

    def start(self, service: str) -> None:
        log = self.tmp / f"{service}.log"
        self.logs[service] = log
        self.procs[service] = subprocess.Popen(
            self.command(service), cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def healthcheck(self) -> bool:
        """compose.yml's own healthcheck command for web, pointed at this port."""
        test = self.file["services"]["web"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        argv = [sys.executable, *[a.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}") for a in test[2:]]]
        try:
            return subprocess.run(argv, env=self.env, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def kill(self, service: str) -> None:
        os.killpg(self.procs[service].pid, signal.SIGKILL)
        self.procs[service].wait(timeout=10)

    def down(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def stack(tmp_path):
    admin = django_settings.DATABASES["default"]
    name = f"portal_compose_{os.getpid()}"
    server = f"postgres://{admin['USER']}@{admin['HOST'] or '127.0.0.1'}:{admin['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis_url = urlunsplit(urlsplit(django_settings.REDIS_URL)._replace(path=f"/{REDIS_DB}"))
    redis.Redis.from_url(redis_url).flushdb()
    running = Stack(tmp_path, f"{server}/{name}", redis_url)
    yield running
    running.down()
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_compose_up_brings_the_portal_and_its_metrics(stack, tmp_path):
    built = stack.build()
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    migrated = stack.run("migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    for service in ("web", "worker", "beat"):
        stack.start(service)
    # compose's healthcheck passes only with the database, Redis and a heartbeat from beat via a worker.
    wait_for(stack.healthcheck, timeout=90, interval=1, what="web healthy (compose healthcheck)")
    base = f"http://127.0.0.1:{stack.port}"
    assert requests.get(f"{base}/metrics", timeout=5, allow_redirects=False).status_code == 401

    token_file = tmp_path / "metrics_token"
    token_file.write_text(stack.env_file["METRICS_TOKEN"])  # the compose secret's content
    prometheus = Prometheus(local_config(f"127.0.0.1:{stack.port}", token_file), tmp_path / "prometheus")
    try:
        wait_for(lambda: prometheus.value('up{job="portal"}') == 1, timeout=30, interval=0.5, what="scraped")
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        assert rules
        assert all(rule["health"] == "ok" for rule in rules)
        assert prometheus.value("portal_worker_heartbeat_age_seconds") < 35
        assert prometheus.value("sum(portal_withings_connections)") is None  # a new installation
        firing = [alert for alert in prometheus.api("alerts")["alerts"] if alert["state"] == "firing"]
        assert firing == []

        stack.kill("worker")
        killed = time.monotonic()
        wait_for(
            lambda: (prometheus.value("portal_worker_heartbeat_age_seconds") or 0) > 40,
            timeout=60, interval=1, what="the killed worker's heartbeat age rising",
        )  # fmt: skip
        assert time.monotonic() - killed < 60
        assert prometheus.value('up{job="portal"}') == 1
    finally:
        prometheus.stop()
    stack.down()

    # Logs: every line web, worker and beat wrote is one JSON object, and none carries a secret.
    secrets_in_env = [stack.env_file[name] for name in (
        "POSTGRES_PASSWORD", "DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "CONTACT_LOOKUP_KEY",
        "METRICS_TOKEN", "WITHINGS_CLIENT_SECRET",
    )]  # fmt: skip
    for service, log in stack.logs.items():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        assert lines, service
        not_json = [line for line in lines if not line.startswith("{")]
        assert not_json == [], (service, not_json[:5])
        for line in lines:
            json.loads(line)
            assert not any(secret in line for secret in secrets_in_env), (service, line)
