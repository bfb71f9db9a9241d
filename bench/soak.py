"""Soak with faults: link a cohort, keep cuffs syncing, inject upstream faults, kill -9 a worker.

    make soak    # or: .venv/bin/python bench/soak.py [--participants 200 --days 60 --sync-minutes 7]

Own PostgreSQL database (SOAK_DATABASE_URL, default portal_soak, recreated + migrated) and Redis
database (SOAK_REDIS_URL, default redis://127.0.0.1:6379/10, flushed). The Withings sandbox runs in
this process; gunicorn serves the portal (it receives the sandbox's notification deliveries); two
Celery worker instances (2 pool processes each) consume the three queues.

1. Faults for the whole active phase: 10 % HTTP 5xx, 5 % timeouts (the sandbox stalls 3 s, the
   portal's WITHINGS_HTTP_TIMEOUT is 2 s), a burst of 601s every --burst-every s (wait_seconds
   2–5), one 401 on a data call every --401-every s (a scaled-down "hour").
2. Links --participants participants (sandbox tokens, --days days of generated readings each) and
   queues ``after_link`` for each (subscribe + back-fill + devices).
3. For --sync-minutes: every second, --syncs-per-second subscribed participants' cuffs sync one new
   reading (the sandbox notifies the portal); worker w1 is SIGKILLed three times (restarted after
   --restart-after s); PostgreSQL is restarted once (at --pg-restart-at of the phase, down for
   --outage s) and Redis once (--redis-restart-at), losing all its data: the broker's queues, the
   locks, the limiter. ``--restart-mode cluster`` (default) restarts the real servers on this
   machine (every database and Redis database on them: nothing else may be using them meanwhile);
   ``database`` only cuts the soak's own PostgreSQL sessions (refusing new ones for the outage) and
   flushes its own Redis database after cutting its clients.
   The beat scanners run as beat would: inbox sweep every 30 s, back-fill resume every 30 s
   (WITHINGS_BACKFILL_STALL_SECONDS 45 here, above the 30 s lock TTL).
4. Drain: faults off, the inbox sweep is run every 15 s (pending rows older than 15 s re-queued, as
   the beat task ``withings.sweep_notifications`` does with 120 s), until everything is stored or
   --drain-timeout. Redelivery of a killed worker's unacked tasks needs CELERY_VISIBILITY_TIMEOUT
   (10 s here) plus kombu's restore cycle.
5. Checks (exit 1 if one fails): every upstream BP reading stored exactly once, nobody in
   needs_reauth, every stored refresh token valid at the sandbox, every inbox row processed,
   every back-fill complete. Prints retries, faults fired, the notification → stored lag, each
   restart's recovery time (until readings are stored again) and the longest stall (the longest
   time no reading was stored, and the longest an open back-fill went without a step).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celery_stack import ROOT, Stack, expected_bp_grpids, percentile

DB_URL = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_soak")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/10")
FIRST_SOAK_GRPID = 9_000_000_000


def inject_faults(stack: Stack, args, stop: threading.Event, rng: random.Random) -> None:
    state = stack.state
    state.set_fault("http5xx", probability=args.http5xx, http_status=503)
    # Faults are tried in order; the timeout's probability is of the calls the 5xx let through.
    state.set_fault("timeout", probability=args.timeouts / (1 - args.http5xx), delay=args.timeout_delay)
    next_burst = time.monotonic() + args.burst_every
    next_401 = time.monotonic() + args.every_401 / 2
    while not stop.wait(0.5):
        if time.monotonic() >= next_burst:
            state.set_fault("601", count=args.burst_size, wait_seconds=rng.randint(2, 5))
            next_burst += args.burst_every
        if time.monotonic() >= next_401:
            state.set_fault("401", count=1)
            next_401 += args.every_401


def sweep(older_than: int = 15) -> int:
    """What the beat task ``withings.sweep_notifications`` does, with a shorter age."""
    from withings.selectors import pending_notification_ids
    from withings.tasks import process_notification

    ids = pending_notification_ids(older_than_seconds=older_than)
    for notification_id in ids:
        process_notification.delay(notification_id)
    return len(ids)


def beat_scan(name: str, call) -> int:
    """Run a beat scanner from this process; the database may be restarting under it."""
    from django.db import InterfaceError, OperationalError

    from core.tasking import discard_broken_connections

    try:
        return call()
    except (OperationalError, InterfaceError) as exc:
        discard_broken_connections()
        print(f"  ({name} skipped: {type(exc).__name__}; beat would try again next time)")
        return 0
    except Exception as exc:  # the broker restarting: kombu/redis errors
        print(f"  ({name} skipped: {type(exc).__name__})")
        return 0


def resume_backfills() -> int:
    """What the beat task ``withings.resume_backfills`` does."""
    from withings.tasks import resume_backfills as scan

    return scan()


def restart_postgresql(mode: str, outage: float) -> None:
    if mode == "cluster":
        version = sorted(os.listdir("/etc/postgresql"))[0]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"],
                       check=True)  # fmt: skip
        time.sleep(outage)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        return
    import psycopg

    admin = DB_URL.rsplit("/", 1)[0] + "/postgres"
    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        time.sleep(outage)
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def restart_redis(mode: str, outage: float) -> None:
    from redis import Redis

    if mode == "cluster":
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
        time.sleep(outage)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                        "--logfile", "/var/log/redis/ci.log"], check=True)  # fmt: skip
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not come back")
    client = Redis.from_url(REDIS_URL)
    db = int(REDIS_URL.rsplit("/", 1)[1])
    for info in client.client_list():
        if int(info.get("db", -1)) == db and int(info["id"]) != client.client_id():
            client.client_kill_filter(_id=info["id"])
    client.flushdb()
    time.sleep(outage)


def subscribed_userids(stack: Stack) -> list[str]:
    return sorted({s["userid"] for s in stack.state.subscriptions() if s["appli"] == 4})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--page-size", type=int, default=50, help="sandbox getmeas page size")
    parser.add_argument("--sync-minutes", type=float, default=7.0)
    parser.add_argument("--syncs-per-second", type=float, default=2.0)
    parser.add_argument("--http5xx", type=float, default=0.10)
    parser.add_argument("--timeouts", type=float, default=0.05)
    parser.add_argument("--timeout-delay", type=float, default=3.0, help="sandbox stall (portal timeout 2 s)")
    parser.add_argument("--burst-every", type=float, default=45.0)
    parser.add_argument("--burst-size", type=int, default=5)
    parser.add_argument("--401-every", dest="every_401", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--restart-mode", choices=["cluster", "database"], default="cluster")
    parser.add_argument("--pg-restart-at", type=float, default=0.35, help="fraction of the active phase")
    parser.add_argument("--redis-restart-at", type=float, default=0.65, help="fraction of the active phase")
    parser.add_argument("--outage", type=float, default=2.3, help="seconds each server stays down")
    parser.add_argument("--restart-after", type=float, default=5.0)
    parser.add_argument("--rate-limit", type=int, default=3000, help="portal limit/min (sandbox +20 %%)")
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.participants > 2000 or args.days > 365 or args.sync_minutes > 60:
        raise SystemExit("bounded: at most 2,000 participants, 365 days, 60 minutes")
    rng = random.Random(args.seed)

    started = time.monotonic()
    stop_faults = threading.Event()
    with Stack(
        db_url=DB_URL,
        redis_url=REDIS_URL,
        workdir=ROOT / "test-artifacts" / "soak",
        sandbox_rate_limit=int(args.rate_limit * 1.2),
        portal_rate_limit=args.rate_limit,
        page_size=args.page_size,
        http_timeout=2.0,
        visibility_timeout=10,
        sync_lock_ttl=30,
        extra_env={"WITHINGS_BACKFILL_STALL_SECONDS": "45"},
    ) as stack:
        try:
            return run(stack, args, rng, stop_faults, started)
        finally:
            stop_faults.set()


def run(stack: Stack, args, rng: random.Random, stop_faults: threading.Event, started: float) -> int:
    from withings.sandbox import bp_group

    stack.setup_database()
    stack.start_gunicorn()
    workers = stack.start_workers(2)
    print(
        f"stack up in {time.monotonic() - started:.0f} s: sandbox {stack.sandbox.url}, "
        f"portal {stack.base_url}"
    )

    from withings.tasks import after_link

    connections = stack.create_participants(args.participants, days=args.days, seed=args.seed)
    print(f"{len(connections)} participants linked with {args.days} days of readings "
          f"({sum(len(stack.state.groups(c.withings_userid)) for c in connections)} groups "
          "upstream)")  # fmt: skip
    faults = threading.Thread(target=inject_faults, args=(stack, args, stop_faults, rng), daemon=True)
    faults.start()
    active_start = time.monotonic()
    for connection in connections:
        after_link.delay(connection.pk)

    synced: dict[tuple[str, int], float] = {}  # (userid, grpid) -> when the cuff synced it
    grpid = FIRST_SOAK_GRPID
    last_date: dict[str, int] = {}
    duration = args.sync_minutes * 60
    kill_at = [active_start + duration * (i + 1) / (args.kills + 1) for i in range(args.kills)]
    kills: list[float] = []
    restarts = {
        "postgresql": active_start + duration * args.pg_restart_at,
        "redis": active_start + duration * args.redis_restart_at,
    }
    restarted: dict[str, float] = {}  # server -> wall-clock time it was back up
    restart_at = None
    budget = 0.0
    last_sweep = time.monotonic()
    backfill_stall = 0.0
    while time.monotonic() - active_start < duration:
        tick = time.monotonic()
        users = subscribed_userids(stack)
        budget += args.syncs_per_second
        while budget >= 1 and users:
            budget -= 1
            uid = rng.choice(users)
            grpid += 1
            # One cuff takes one reading at a time: a participant's measurement times are distinct. (Two
            # syncs announcing the same date range make identical deliveries, which the inbox takes
            # for one delivery retried: the second reading would wait for the safety-net poll.)
            date = last_date[uid] = max(int(time.time()) - rng.randrange(30, 300), last_date.get(uid, 0) + 1)
            synced[(uid, grpid)] = time.time()
            group = bp_group(110 + rng.randrange(60), 70 + rng.randrange(30), 60 + rng.randrange(30),
                             date=date, grpid=grpid)  # fmt: skip
            stack.state.cuff_sync(uid, [group], deliver=True)
        if kill_at and tick >= kill_at[0]:
            kill_at.pop(0)
            workers[1].kill9()
            kills.append(tick - active_start)
            print(f"  t={tick - active_start:5.0f} s  kill -9 worker w1 (#{workers[1].kills})")
            restart_at = tick + args.restart_after
        if restart_at is not None and tick >= restart_at:
            workers[1].start(wait=False)
            restart_at = None
        for server, at in list(restarts.items()):
            if tick >= at:
                del restarts[server]
                (restart_postgresql if server == "postgresql" else restart_redis)(
                    args.restart_mode, args.outage
                )
                restarted[server] = time.time()
                print(f"  t={tick - active_start:5.0f} s  {server} restarted ({args.restart_mode}, "
                      f"down {args.outage:g} s{', data lost' if server == 'redis' else ''})")  # fmt: skip
        if tick - last_sweep >= 30:
            beat_scan("sweep", lambda: sweep(older_than=120))  # the beat cadence/age during the run
            beat_scan("resume_backfills", resume_backfills)
            backfill_stall = max(backfill_stall, beat_scan("stall probe", longest_open_backfill_stall))
            last_sweep = tick
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    if restart_at is not None:
        workers[1].start(wait=False)
    stop_faults.set()
    stack.state.clear_faults()
    active_s = time.monotonic() - active_start
    print(f"active phase {active_s:.0f} s: {len(synced)} cuff syncs; faults off, draining")

    drain_start = time.monotonic()
    result = None
    sweeps = 0
    while time.monotonic() - drain_start < args.drain_timeout:
        result = collect(stack, connections)
        if result["done"]:
            break
        if time.monotonic() - drain_start > 20 and int(time.monotonic() - drain_start) % 15 < 3:
            sweeps += sweep(older_than=15)
            resume_backfills()
            backfill_stall = max(backfill_stall, longest_open_backfill_stall())
            stack.state.retry_failed_deliveries(wait=True)
        time.sleep(3)
    drain_s = time.monotonic() - drain_start
    result = collect(stack, connections)
    lag = lags(synced, result["uid_of"])
    total_s = time.monotonic() - started
    stalls = {
        "recovery": {server: recovery_seconds(at) for server, at in restarted.items()},
        "longest_no_reading": longest_gap_without_a_reading(),
        "longest_backfill_stall": backfill_stall,
    }
    return report(stack, args, result, kills, active_s, drain_s, sweeps, total_s, lag, len(synced), stalls)


def longest_open_backfill_stall() -> float:
    """Seconds since the least recently progressing open back-fill last stored a page."""
    from django.db.models import Min
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from withings.models import WithingsConnection

    oldest = WithingsConnection.objects.filter(backfill_completed_at__isnull=True).aggregate(
        m=Min(Coalesce("backfill_progress_at", "linked_at"))
    )["m"]
    return 0.0 if oldest is None else (timezone.now() - oldest).total_seconds()


def recovery_seconds(back_up_at: float) -> float | None:
    """From the server being back up to the first reading stored after it."""
    import datetime as dt

    from measurements.models import BloodPressureReading

    first = (
        BloodPressureReading.objects.filter(ingested_at__gt=dt.datetime.fromtimestamp(back_up_at, tz=dt.UTC))
        .order_by("ingested_at")
        .values_list("ingested_at", flat=True)
        .first()
    )
    return None if first is None else first.timestamp() - back_up_at


def longest_gap_without_a_reading() -> float:
    from measurements.models import BloodPressureReading

    times = BloodPressureReading.objects.order_by("ingested_at").values_list("ingested_at", flat=True)
    longest, previous = 0.0, None
    for t in times.iterator(chunk_size=20_000):
        if previous is not None:
            longest = max(longest, (t - previous).total_seconds())
        previous = t
    return longest


def collect(stack: Stack, connections) -> dict:
    from django.db.models import Count

    from measurements.models import BloodPressureReading
    from withings.models import Notification, WithingsConnection

    now = time.time()
    expected: dict[int, set[int]] = {}
    uid_of = {}
    for c in connections:
        expected[c.participant_id] = expected_bp_grpids(stack.state, c.withings_userid, now)
        uid_of[c.participant_id] = c.withings_userid
    stored: dict[int, list[int]] = {}
    for pid, g in BloodPressureReading.objects.values_list("participant_id", "grpid").iterator(
        chunk_size=20_000
    ):
        stored.setdefault(pid, []).append(g)
    n_expected = sum(len(v) for v in expected.values())
    n_stored = sum(len(v) for v in stored.values())
    duplicated = sum(len(v) - len(set(v)) for v in stored.values())
    missing = sum(len(exp - set(stored.get(pid, []))) for pid, exp in expected.items())
    unexpected = sum(len(set(v) - expected.get(pid, set())) for pid, v in stored.items())
    inbox = dict(Notification.objects.order_by().values_list("status").annotate(n=Count("pk")))
    statuses = dict(WithingsConnection.objects.order_by().values_list("status").annotate(n=Count("pk")))
    backfills_open = WithingsConnection.objects.filter(backfill_completed_at__isnull=True).count()
    done = missing == 0 and inbox.get("pending", 0) == 0 and backfills_open == 0
    return {
        "expected": n_expected, "stored": n_stored, "duplicated": duplicated, "missing": missing,
        "unexpected": unexpected, "inbox": inbox, "statuses": statuses, "backfills_open": backfills_open,
        "done": done, "uid_of": uid_of,
    }  # fmt: skip


def lags(synced: dict[tuple[str, int], float], uid_of: dict[int, str]) -> list[float]:
    """Seconds from the cuff sync (the sandbox starts delivering at once) to the stored reading."""
    from measurements.models import BloodPressureReading

    rows = BloodPressureReading.objects.filter(grpid__gte=FIRST_SOAK_GRPID).values_list(
        "participant_id", "grpid", "ingested_at"
    )
    out = []
    for pid, grpid, ingested in rows.iterator(chunk_size=10_000):
        sent = synced.get((uid_of.get(pid), grpid))
        if sent is not None:
            out.append(ingested.timestamp() - sent)
    return out


def report(stack: Stack, args, r, kills, active_s, drain_s, sweeps, total_s, lag, n_synced, stalls) -> int:
    from django.db.models import Max

    from withings.models import Notification, WithingsConnection

    valid_lost = [
        c.pk
        for c in WithingsConnection.objects.all()
        if c.refresh_token not in stack.state.valid_refresh_tokens(c.withings_userid, c.app_client_id)
    ]
    stats = stack.state.stats
    retries = stack.worker_log_count(r" retry: Retry in ")
    by_task = Counter()
    for w in stack.workers:
        for line in w.log.read_text(errors="replace").splitlines():
            if " retry: Retry in " in line and "Task withings." in line:
                by_task[line.split("Task withings.", 1)[1].split("[", 1)[0]] += 1
    max_attempts = Notification.objects.aggregate(m=Max("attempts"))["m"] or 0
    total_calls, refused = stack.api_calls()
    faults = {k.split(".", 1)[1]: v for k, v in sorted(stats.items()) if k.startswith("fault.")}
    print(
        f"\nSoak with faults: {args.participants} participants x {args.days} days, "
        f"{args.sync_minutes:g} min of cuff syncs, 2 workers x 2 processes, gunicorn, {os.cpu_count()} CPUs"
    )
    print(f"  wall time        {total_s:.0f} s (active {active_s:.0f} s, drain {drain_s:.0f} s)")
    print(
        f"  worker kills     {len(kills)} (kill -9 at t = {', '.join(f'{k:.0f}' for k in kills)} s), "
        "restarted each time"
    )
    print(f"  upstream calls   {total_calls} answered by the sandbox ({refused} refused by its rate limit)")
    endpoints = {"oauth2", "measure", "notify", "user"}
    calls = {k: v for k, v in sorted(stats.items()) if k.split(".", 1)[0] in endpoints}
    print(f"  by action        {calls}")
    print(f"  faults fired     {faults}")
    print(
        f"  601 answers      {stats.get('sent_601', 0)} (injected {faults.get('601', 0)}, "
        f"rate limit {refused})"
    )
    print(f"  refreshes        {stats.get('refreshes', 0)} token refreshes at the sandbox")
    print(f"  task retries     {retries} (worker log 'Retry in' lines) {dict(by_task.most_common())}")
    print(
        f"  notifications    inbox {r['inbox']}; max attempts {max_attempts}; sweep re-queued {sweeps}; "
        f"deliveries {stats.get('deliveries', 0)} ({stats.get('deliveries_failed', 0)} failed)"
    )
    print(
        f"  readings         expected {r['expected']} / stored {r['stored']} / duplicated {r['duplicated']} "
        f"/ missing {r['missing']} / unexpected {r['unexpected']}"
    )
    if lag:
        print(
            f"  lag cuff sync -> stored  n={len(lag)}  p50 {percentile(lag, 50):.1f} s  "
            f"p99 {percentile(lag, 99):.1f} s  max {max(lag):.1f} s"
        )
    print(f"  connections      {r['statuses']}; back-fills open {r['backfills_open']}")
    recovery = ", ".join(
        f"{server} {'never' if s is None else f'{s:.1f} s'}" for server, s in stalls["recovery"].items()
    )
    print(f"  restarts         {recovery or 'none'} (back up -> next reading stored)")
    print(
        f"  longest stall    {stalls['longest_no_reading']:.1f} s with no reading stored; an open back-fill "
        f"{stalls['longest_backfill_stall']:.0f} s without a step (sampled every 30 s)"
    )
    checks = {
        "every upstream BP reading stored exactly once": r["missing"] == 0 and r["duplicated"] == 0
        and r["unexpected"] == 0 and r["stored"] == r["expected"],
        "nobody in needs_reauth": r["statuses"].get("needs_reauth", 0) == 0,
        "no refresh token lost (each stored one valid at the sandbox)": not valid_lost,
        "every notification processed": set(r["inbox"]) <= {"processed"},
        "every back-fill complete": r["backfills_open"] == 0,
        "every cuff sync's reading stored": len(lag) == n_synced,
        "the kills happened": len(kills) == args.kills,
        "PostgreSQL and Redis restarted, readings flowed again after each": len(stalls["recovery"]) == 2
        and all(s is not None for s in stalls["recovery"].values()),
    }  # fmt: skip
    if valid_lost:
        print(f"  connections whose refresh token is dead: {valid_lost[:20]}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
