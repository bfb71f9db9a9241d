"""A real Celery worker (separate processes) on Redis and the test PostgreSQL database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection

from config.celery_app import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = 14
QUEUES = "withings_notify,default,withings_backfill"


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.proc = env, log, None

    def start(self) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES, "--concurrency=2",
             "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", f"test-{time.time_ns()}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: b"ready" in self.log.read_bytes(), timeout=60, what="celery worker ready")
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool children), as an OOM killer would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _reset_pools() -> None:
    """Forget the pools made with the previous broker settings (kombu's global registry keeps
    one pool per broker URL, so nothing is closed here: the next test may reuse it)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_url(redis_url) -> str:
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{BROKER_DB}"))
    redis.Redis.from_url(url).flushdb()  # no task left over from an earlier run
    return url


@pytest.fixture
def celery_worker_factory(broker_url, live_server, sandbox, settings, tmp_path):
    """Start real workers that talk to this test's database, Redis broker, sandbox and live server."""
    settings.PORTAL_BASE_URL = live_server.url
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "WITHINGS_SYNC_LOCK_TTL": "8",
        "PORTAL_BASE_URL": live_server.url,
        "WITHINGS_API_URL": sandbox.url,
        "WITHINGS_AUTH_URL": sandbox.url,
        "WITHINGS_CLIENT_ID": sandbox.client_id,
        "WITHINGS_CLIENT_SECRET": sandbox.client_secret,
        "WITHINGS_RATE_LIMIT_PER_MINUTE": "100000",
    }
    old = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager", "broker_transport_options")}
    celery_app.conf.update(
        broker_url=broker_url,
        task_always_eager=False,
        broker_transport_options={**old["broker_transport_options"], "visibility_timeout": 4},
    )
    _reset_pools()
    workers: list[Worker] = []

    def start() -> Worker:
        worker = Worker(env, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
    celery_app.conf.update(**old)
    _reset_pools()
