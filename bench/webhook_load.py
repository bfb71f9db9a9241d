"""Webhook load: the portal under gunicorn, 20,000 notifications at concurrency 64 over loopback.

    make bench-webhook    # or: .venv/bin/python bench/webhook_load.py [--requests N] [--concurrency C]
    make bench-webhook BENCH_ARGS="--rates 10,100,300 --duration 20"    # open loop at fixed rates

1. (Re)creates its own PostgreSQL database (BENCH_DATABASE_URL, default portal_bench_webhook) and uses
   its own Redis database (BENCH_REDIS_URL, default redis://127.0.0.1:6379/9, flushed at start).
2. Starts the Withings sandbox in this process, creates N linked connections (real sandbox tokens,
   one new reading each), starts gunicorn with the production settings on 127.0.0.1.
3. Fires the notifications with a small asyncio HTTP/1.1 client (keep-alive, C connections); every
   20th request repeats an earlier delivery (Withings retries), so dedupe is exercised.
4. Starts a Celery worker, waits until the inbox is drained, and checks: inbox rows == distinct
   accepted deliveries, dedupe keys unique, every row processed exactly once (attempts <= 1, status
   processed), one reading per user stored once, and how many getmeas calls served the notifications.
Prints a summary; loopback only; bounded in count and time (exits non-zero on a failed check).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celery_stack import free_port, percentile, recreate_database, wait_port  # noqa: E402

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_webhook")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
NOTIFY_SECRET = secrets.token_hex(20)
CLIENT_ID, CLIENT_SECRET = "bench-client", secrets.token_hex(16)


def portal_env(sandbox_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    key = os.environ.get("BENCH_FIELD_KEY") or Fernet.generate_key().decode()
    os.environ["BENCH_FIELD_KEY"] = key
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WITHINGS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="bench-" + "s" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        FIELD_ENCRYPTION_KEYS=key,
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX="bench",
        WITHINGS_NOTIFY_SECRET=NOTIFY_SECRET,
        WITHINGS_API_URL=sandbox_url,
        WITHINGS_AUTH_URL=sandbox_url,
        WITHINGS_CLIENT_ID=CLIENT_ID,
        WITHINGS_CLIENT_SECRET=CLIENT_SECRET,
        WITHINGS_RATE_LIMIT_PER_MINUTE="1000000",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def setup_portal(env: dict[str, str], sandbox, users: int) -> list[str]:
    """Migrate, then create one study with `users` linked participants; returns their userids."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.utils import timezone

    from cohorts.models import Participant, Study
    from withings.models import WithingsConnection
    from withings.sandbox import bp_group

    study = Study.objects.create(slug="bench", name="Bench study", status=Study.Status.ACTIVE)
    userids = []
    now = int(time.time())
    for i in range(users):
        userid = sandbox.state.create_user()
        sandbox.state.add_groups(userid, [bp_group(120 + i % 30, 80, 60, date=now - 600)])
        body = sandbox.state.issue_tokens_for_test(userid, CLIENT_ID, scope="user.metrics")
        participant = Participant.objects.create(
            study=study, code=f"B-{i:04d}", status=Participant.Status.ACTIVE, timezone="UTC"
        )
        connection = WithingsConnection(
            participant=participant,
            app_client_id=CLIENT_ID,
            withings_userid=str(body["userid"]),
            sync_watermark=now - 3600,
            backfill_completed_at=timezone.now(),
        )
        connection.set_tokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_in=body["expires_in"],
            scope=body["scope"],
        )
        connection.save()
        userids.append(str(body["userid"]))
    from common import record_consents

    record_consents(list(Participant.objects.filter(study=study).values_list("pk", flat=True)))
    return userids


# The load generator -----------------------------------------------------------------------------


class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: dict[int, int] = {}
        self.accepted_payloads: set[str] = set()
        self.errors = 0


async def _request(reader, writer, path: str, body: bytes) -> tuple[int, bool]:
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return status, headers.get("connection", "").lower() == "close"


async def load(port: int, payloads: list[bytes], concurrency: int, result: Result) -> float:
    path = f"/withings/notify/{NOTIFY_SECRET}/"
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)

    async def worker() -> None:
        reader = writer = None
        while True:
            try:
                payload = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            for _attempt in range(3):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    started = time.perf_counter()
                    status, close = await asyncio.wait_for(_request(reader, writer, path, payload), 10)
                    result.latencies.append(time.perf_counter() - started)
                    result.status[status] = result.status.get(status, 0) + 1
                    if status == 200:
                        result.accepted_payloads.add(payload.decode())
                    if close:
                        writer.close()
                        writer = None
                    break
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    result.errors += 1
                    if writer is not None:
                        writer.close()
                    writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def open_loop(
    port: int, payloads: list[bytes], rate: float, result: Result, max_connections: int = 256
) -> tuple[float, float]:
    """Send at a fixed rate whatever the answers do (open loop): request i leaves at t0 + i/rate on an
    idle keep-alive connection (a new one when none is idle, at most ``max_connections``; past that a
    request waits in the client, as it would at a proxy). Latency counts from the scheduled send
    time, so a slow server shows as latency rather than as a lower offered rate (no coordinated
    omission). Returns (seconds, worst lag of the scheduler itself)."""
    path = f"/withings/notify/{NOTIFY_SECRET}/"
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    tasks = []
    worst_lag = 0.0

    slots = asyncio.Semaphore(max_connections)

    async def send(payload: bytes, scheduled: float) -> None:
        async with slots:
            await _send(payload, scheduled)

    async def _send(payload: bytes, scheduled: float) -> None:
        for _attempt in range(3):
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                status, close = await asyncio.wait_for(_request(*conn, path, payload), 10)
                result.latencies.append(time.perf_counter() - scheduled)
                result.status[status] = result.status.get(status, 0) + 1
                if status == 200:
                    result.accepted_payloads.add(payload.decode())
                if close:
                    conn[1].close()
                else:
                    idle.append(conn)
                return
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                result.errors += 1
                if conn is not None:
                    conn[1].close()

    started = time.perf_counter()
    for i, payload in enumerate(payloads):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, time.perf_counter() - scheduled)
        tasks.append(asyncio.create_task(send(payload, scheduled)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    return time.perf_counter() - started, worst_lag


def make_payloads(userids: list[str], count: int, *, days_back: int = 1) -> list[bytes]:
    base = int(time.time()) - 86400 * days_back
    payloads: list[bytes] = []
    for i in range(count):
        if i % 20 == 19:
            payloads.append(payloads[i - 10])  # a retried delivery: must be stored once
            continue
        userid = userids[(i - i // 20) % len(userids)]  # every user gets fresh deliveries
        fields = {"userid": userid, "appli": 4, "startdate": base + i, "enddate": base + i + 60}
        payloads.append(urlencode(fields).encode())
    return payloads


# Draining and checking -------------------------------------------------------------------------


def drain(env: dict[str, str], expected: int, timeout: float) -> tuple[float, subprocess.Popen]:
    from withings.models import Notification

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
         "withings_notify,default,withings_backfill", "--concurrency=2", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending = Notification.objects.filter(status=Notification.Status.PENDING).count()
        if pending == 0 and Notification.objects.count() >= expected:
            break
        time.sleep(0.5)
    return time.monotonic() - started, worker


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument(
        "--rates",
        help="open loop instead: comma-separated fixed rates in req/s (e.g. 10,100,300), one after another",
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per rate (open loop)")
    parser.add_argument("--max-connections", type=int, default=256, help="open loop: client connections cap")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")] if args.rates else []
    if rates and (max(rates) > 1000 or sum(rates) * args.duration > 100_000):
        raise SystemExit("bounded: at most 1,000 req/s and 100,000 requests in all")
    if args.requests > 100_000 or args.concurrency > 512:
        raise SystemExit("bounded: at most 100,000 requests and 512 connections")

    from redis import Redis

    from withings.sandbox import SandboxState, start_sandbox

    Redis.from_url(REDIS_URL).flushdb()
    state = SandboxState(auto_approve=True, rate_limit_per_minute=None, identical_call_window=0)
    state.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/withings/callback/"])
    sandbox = start_sandbox(state)
    env = portal_env(sandbox.url)
    recreate_database(DB_URL)
    userids = setup_portal(env, sandbox, args.users)
    port = free_port()
    gunicorn = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
         "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    worker = None
    try:
        wait_port(port)
        payloads = make_payloads(userids, args.requests)
        asyncio.run(load(port, make_payloads(userids, 200, days_back=30), 8, Result()))  # warm-up
        from withings.models import Notification

        warm = set(Notification.objects.values_list("dedupe_key", flat=True))
        result = Result()
        if rates:
            total = int(sum(rates) * args.duration)
            payloads = make_payloads(userids, total)
            elapsed, offset = 0.0, 0
            rows = []
            for rate in rates:
                count = int(rate * args.duration)
                part = Result()
                load_before = os.getloadavg()[0]
                seconds, lag = asyncio.run(
                    open_loop(port, payloads[offset : offset + count], rate, part, args.max_connections)
                )
                rows.append((rate, part, seconds, lag, load_before, os.getloadavg()[0]))
                offset += count
                elapsed += seconds
                result.latencies += part.latencies
                result.errors += part.errors
                result.accepted_payloads |= part.accepted_payloads
                for code, n in part.status.items():
                    result.status[code] = result.status.get(code, 0) + n
            report_open_loop(args, rows)
        else:
            elapsed = asyncio.run(load(port, payloads, args.concurrency, result))
        getmeas_before = state.stats.get("measure.getmeas", 0)
        drain_s, worker = drain(env, 1, args.drain_timeout)
        return report(
            args, result, elapsed, drain_s, warm, state.stats.get("measure.getmeas", 0) - getmeas_before
        )
    finally:
        if worker is not None:
            stop(worker)
        stop(gunicorn)
        sandbox.stop()


def report_open_loop(args, rows) -> None:
    print(f"\nOpen-loop webhook load: {args.duration:.0f} s per rate, gunicorn {args.workers}x{args.threads} "
          f"gthread, {os.cpu_count()} CPUs, loopback; latency from the scheduled send time")  # fmt: skip
    print("  offered  achieved   p50 ms   p99 ms   max ms  errors  non-200  sched lag ms  load avg (1 min)")
    for rate, part, seconds, lag, load_before, load_after in rows:
        lat = [x * 1000 for x in part.latencies] or [0.0]
        non_200 = sum(n for code, n in part.status.items() if code != 200)
        print(f"  {rate:7.0f}  {len(part.latencies) / seconds:8.0f}  {percentile(lat, 50):7.1f}  "
              f"{percentile(lat, 99):7.1f}  {max(lat):7.1f}  {part.errors:6d}  {non_200:7d}  "
              f"{lag * 1000:12.1f}  {load_before:.2f} → {load_after:.2f}")  # fmt: skip


def report(args, result: Result, elapsed: float, drain_s: float, warm: set[str], getmeas: int) -> int:
    from django.db.models import Count, Max

    from measurements.models import BloodPressureReading
    from withings.models import Notification
    from withings.services.notifications import dedupe_key

    lat = [x * 1000 for x in result.latencies]
    accepted = result.status.get(200, 0)
    expected_keys = set()
    for payload in result.accepted_payloads:
        fields = dict(kv.split("=", 1) for kv in payload.split("&"))
        expected_keys.add(dedupe_key(fields))
    rows = Notification.objects.exclude(dedupe_key__in=warm)
    keys = list(rows.values_list("dedupe_key", flat=True))
    by_status = dict(rows.order_by().values_list("status").annotate(n=Count("pk")))
    max_attempts = rows.aggregate(m=Max("attempts"))["m"]
    readings = BloodPressureReading.objects.count()
    distinct_readings = BloodPressureReading.objects.values("participant_id", "grpid").distinct().count()
    checks = {
        "every request answered (no connection errors)": result.errors == 0 and accepted == len(lat),
        "inbox rows == distinct accepted deliveries": len(keys) == len(expected_keys),
        "dedupe keys unique, exactly the accepted ones": len(set(keys)) == len(keys) == len(expected_keys)
        and set(keys) == expected_keys,
        "every row processed": by_status == {"processed": len(keys)},
        "processed at most once (attempts <= 1)": (max_attempts or 0) <= 1,
        "one reading per user, stored once": readings == distinct_readings == args.users,
    }  # fmt: skip
    mode = f"open loop at {args.rates} req/s" if args.rates else f"concurrency {args.concurrency}"
    print(f"\nWebhook load: {len(lat)} POSTs, {mode}, gunicorn "
          f"{args.workers}x{args.threads} gthread, {os.cpu_count()} CPUs, loopback")  # fmt: skip
    print(f"  throughput      {len(lat) / elapsed:8.0f} req/s  ({elapsed:.1f} s)")
    print(f"  latency ms      p50 {percentile(lat, 50):.1f}  p90 {percentile(lat, 90):.1f}  "
          f"p99 {percentile(lat, 99):.1f}  max {max(lat):.1f}  mean {statistics.fmean(lat):.1f}")  # fmt: skip
    print(f"  status codes    {dict(sorted(result.status.items()))}  connection errors {result.errors}")
    print(f"  under 2 s       {sum(1 for x in lat if x < 2000)} / {len(lat)}")
    print(f"  inbox           {len(keys)} rows for {len(expected_keys)} distinct accepted deliveries "
          f"({accepted - len(expected_keys)} retried duplicates absorbed)")  # fmt: skip
    print(
        f"  drained in      {drain_s:.1f} s by one worker (2 processes); statuses {by_status}; "
        f"max attempts {max_attempts}"
    )
    print(f"  getmeas calls   {getmeas} for {len(keys)} notifications of {args.users} users "
          f"({len(keys) / max(getmeas, 1):.0f} notifications per fetch: coalesced)")  # fmt: skip
    print(f"  readings        {readings} stored ({distinct_readings} distinct participant/grpid)")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
