"""The whole ingestion stack on loopback, for the long-running measurements (soak, sync budget).

A separate PostgreSQL database (recreated + migrated), a separate Redis database (flushed), the
Withings sandbox in this process, the portal's web part under gunicorn (receives the sandbox's
notification deliveries), and N Celery worker instances (separate process groups, each can be
SIGKILLed and restarted). ``Stack.close()`` stops everything it started (process groups), also on
failure; use it as a context manager.

This process itself is configured as the portal (production settings, same database and Redis) so
it can create rows and queue tasks with ``.delay()``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
QUEUES = "withings_notify,default,withings_backfill"
CLIENT_ID = "bench-client"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def recreate_database(db_url: str) -> None:
    import psycopg

    parts = urlsplit(db_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def stop_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Worker:
    """One Celery worker instance (main process + prefork pool) in its own process group."""

    def __init__(self, name: str, env: dict[str, str], log: Path, concurrency: int) -> None:
        self.name, self.env, self.log, self.concurrency = name, env, log, concurrency
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self, wait: bool = True) -> Worker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", QUEUES,
             f"--concurrency={self.concurrency}", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"{self.name}-{time.time_ns()}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if wait:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if b" ready." in self.log.read_bytes()[offset:]:
                    return self
                if self.proc.poll() is not None:
                    raise SystemExit(f"worker {self.name} exited with {self.proc.returncode}; see {self.log}")
                time.sleep(0.2)
            raise SystemExit(f"worker {self.name} not ready after 60 s; see {self.log}")
        return self

    def kill9(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as an OOM killer would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        stop_group(self.proc)


class Stack:
    def __init__(
        self,
        *,
        db_url: str,
        redis_url: str,
        workdir: Path,
        sandbox_rate_limit: int | None,
        portal_rate_limit: int | None,
        portal_rate_burst: int | None = None,
        identical_call_window: float = 10.0,
        page_size: int = 100,
        http_timeout: float = 2.0,
        visibility_timeout: int = 10,
        sync_lock_ttl: int = 30,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.db_url, self.redis_url, self.workdir = db_url, redis_url, workdir
        self.procs: list[subprocess.Popen] = []
        self.workers: list[Worker] = []
        self.gunicorn: subprocess.Popen | None = None
        self.sandbox = None
        workdir.mkdir(parents=True, exist_ok=True)
        for old in workdir.glob("*.log"):
            old.unlink()

        from redis import Redis

        from withings.sandbox import SandboxState, start_sandbox

        Redis.from_url(redis_url).flushdb()
        self.client_secret = secrets.token_hex(16)
        self.state = SandboxState(
            auto_approve=True,
            rate_limit_per_minute=sandbox_rate_limit,
            identical_call_window=identical_call_window,
            page_size=page_size,
            fault_seed=int.from_bytes(secrets.token_bytes(4)),
        )
        self.state.register_client(CLIENT_ID, self.client_secret, ["http://127.0.0.1/withings/callback/"])
        self.sandbox = start_sandbox(self.state)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        from cryptography.fernet import Fernet

        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WITHINGS_", "CELERY_"))
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DJANGO_SECRET_KEY="bench-" + "s" * 50,
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            DJANGO_SECURE_SSL_REDIRECT="false",  # the sandbox delivers over plain http on loopback
            FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            DATABASE_URL=db_url,
            REDIS_URL=redis_url,
            CACHE_KEY_PREFIX="bench",
            PORTAL_BASE_URL=self.base_url,
            WITHINGS_NOTIFY_SECRET=secrets.token_hex(20),
            WITHINGS_API_URL=self.sandbox.url,
            WITHINGS_AUTH_URL=self.sandbox.url,
            WITHINGS_CLIENT_ID=CLIENT_ID,
            WITHINGS_CLIENT_SECRET=self.client_secret,
            WITHINGS_HTTP_TIMEOUT=str(http_timeout),
            WITHINGS_SYNC_LOCK_TTL=str(sync_lock_ttl),
            CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout),
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            **(extra_env or {}),
        )
        # None: the portal's own settings defaults (what a deployment gets without configuring them).
        if portal_rate_limit is not None:
            self.env["WITHINGS_RATE_LIMIT_PER_MINUTE"] = str(portal_rate_limit)
        if portal_rate_burst is not None:
            self.env["WITHINGS_RATE_LIMIT_BURST"] = str(portal_rate_burst)

    # -- set-up ------------------------------------------------------------------------------

    def setup_database(self) -> None:
        recreate_database(self.db_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        os.environ.update({**self.env, "LOG_LEVEL": "WARNING"})
        import django

        django.setup()

    def start_gunicorn(self, workers: int = 2, threads: int = 4) -> None:
        self.gunicorn = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
             "--keep-alive", "30", "--log-level", "warning"],
            cwd=ROOT, env={**self.env, "LOG_LEVEL": "WARNING"},
            stdout=(self.workdir / "gunicorn.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port)

    def start_workers(self, count: int, concurrency: int = 2) -> list[Worker]:
        for i in range(count):
            worker = Worker(f"w{i}", self.env, self.workdir / f"worker{i}.log", concurrency)
            self.workers.append(worker.start())
        return self.workers

    def create_participants(self, count: int, *, days: int, seed: int = 1, link_days_ago: int = 0) -> list:
        """``count`` sandbox users with ``days`` days of generated readings (ending yesterday, no late
        syncs) and one linked connection each (real sandbox tokens, nothing synced yet)."""
        from django.utils import timezone

        from cohorts.models import Participant, Study
        from withings.models import WithingsConnection

        today = dt.datetime.now(dt.UTC).date()
        study = Study.objects.create(
            slug=f"bench-{secrets.token_hex(3)}",
            name="Bench study",
            status=Study.Status.ACTIVE,
            start_date=today - dt.timedelta(days=days + 2),
        )
        start = time.time() - (days + 1) * 86400
        connections = []
        for i in range(count):
            userid = self.state.create_user(timezone="UTC")
            self.state.generate_readings(
                userid, start=start, days=days, seed=seed * 100_000 + i, late_sync_rate=0
            )
            body = self.state.issue_tokens_for_test(userid, CLIENT_ID, scope="user.metrics")
            participant = Participant.objects.create(
                study=study, code=f"S-{i:05d}", status=Participant.Status.ACTIVE, timezone="UTC"
            )
            connection = WithingsConnection(
                participant=participant,
                app_client_id=CLIENT_ID,
                withings_userid=str(body["userid"]),
                linked_at=timezone.now() - dt.timedelta(days=link_days_ago),
            )
            connection.set_tokens(
                access_token=body["access_token"],
                refresh_token=body["refresh_token"],
                expires_in=body["expires_in"],
                scope=body["scope"],
            )
            connection.save()
            connections.append(connection)
        from common import record_consents

        record_consents([c.participant_id for c in connections])
        return connections

    # -- measurements --------------------------------------------------------------------------

    def api_calls(self) -> tuple[int, int]:
        """(requests answered by the sandbox API, of which refused by its rate limit)."""
        stats = self.state.stats
        total = sum(
            v
            for k, v in stats.items()
            if k.split(".", 1)[0] in {"oauth2", "measure", "notify", "user", "signature"}
        )
        return total, stats.get("rate_limited", 0)

    def worker_log_count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        return sum(len(rx.findall(w.log.read_text(errors="replace"))) for w in self.workers if w.log.exists())

    # -- tear-down -----------------------------------------------------------------------------

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        stop_group(self.gunicorn)
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expected_bp_grpids(state, userid: str, now: float) -> set[int]:
    """The groups a full sync must have stored: synced (created <= now), real measures, BP."""
    return {
        g["grpid"]
        for g in state.groups(userid)
        if g["created"] <= now and g.get("category", 1) == 1 and {m["type"] for m in g["measures"]} >= {9, 10}
    }
