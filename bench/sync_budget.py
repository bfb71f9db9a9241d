"""Sync scheduling against the rate budget: 2,000 participants back-filling while notifications arrive.

    make bench-sync    # or: .venv/bin/python bench/sync_budget.py [--portal-limit 112 --minutes 3]

Own PostgreSQL database (SYNC_DATABASE_URL, default portal_bench_sync, recreated + migrated) and
Redis database (SYNC_REDIS_URL, default redis://127.0.0.1:6379/11, flushed). The sandbox enforces
Withings' real limits — --sandbox-limit calls per rolling 60 s per application (default 120, as
Withings) and no identical call within 10 s — and the portal's shared limiter gets
WITHINGS_RATE_LIMIT_PER_MINUTE=--portal-limit and WITHINGS_RATE_LIMIT_BURST=--portal-burst (default:
unset, i.e. the settings defaults a deployment gets).

1. --participants linked connections (sandbox tokens, --days days of readings each), subscribed
   to notifications at the sandbox; one ``backfill_step`` queued per connection (what
   ``after_link`` starts). Two Celery worker instances x 2 processes, gunicorn for the deliveries.
2. For --warmup + --minutes: --notifications-per-minute cuff syncs of random participants, each one
   new reading (the sandbox notifies the portal).
3. Measured over the --minutes window (after the warm-up, while back-fills still have work):
   calls the sandbox accepted / (sandbox limit x minutes) = fraction of the budget used (target
   >= 90 %), 601 answers (target 0), notification → stored latency p50/p99 (cuff syncs of the
   window; readings not stored within --grace s after the window count as missing).
Exits 1 when a target is missed. Loopback only; bounded; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celery_stack import CLIENT_ID, ROOT, Stack, percentile

DB_URL = os.environ.get("SYNC_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_sync")
REDIS_URL = os.environ.get("SYNC_REDIS_URL", "redis://127.0.0.1:6379/11")
FIRST_GRPID = 9_100_000_000


def subscribe_all(stack: Stack, connections) -> None:
    """Subscribe each user at the sandbox directly (as ``after_link`` would; not from the budget)."""
    from withings.models import WithingsConnection
    from withings.services.notifications import notify_callback_url

    url = notify_callback_url()
    for c in connections:
        params = {"action": "subscribe", "callbackurl": url, "appli": "4"}
        stack.state.notify(c.withings_userid, CLIENT_ID, params)
    WithingsConnection.objects.update(subscription_state=WithingsConnection.SubscriptionState.SUBSCRIBED)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--sandbox-limit", type=int, default=120, help="sandbox calls per rolling 60 s")
    parser.add_argument("--portal-limit", type=int, default=None, help="WITHINGS_RATE_LIMIT_PER_MINUTE")
    parser.add_argument("--portal-burst", type=int, default=None, help="WITHINGS_RATE_LIMIT_BURST")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the measured window")
    parser.add_argument("--minutes", type=float, default=3.0, help="measured window")
    parser.add_argument("--notifications-per-minute", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.participants > 10_000 or args.minutes > 30:
        raise SystemExit("bounded: at most 10,000 participants and 30 minutes")
    rng = random.Random(args.seed)
    started = time.monotonic()
    with Stack(
        db_url=DB_URL,
        redis_url=REDIS_URL,
        workdir=ROOT / "test-artifacts" / "sync_budget",
        sandbox_rate_limit=args.sandbox_limit,
        portal_rate_limit=args.portal_limit,
        portal_rate_burst=args.portal_burst,
        page_size=args.page_size,
        http_timeout=10.0,
        visibility_timeout=60,
        sync_lock_ttl=120,
    ) as stack:
        return run(stack, args, rng, started)


def run(stack: Stack, args, rng: random.Random, started: float) -> int:
    stack.setup_database()
    from django.conf import settings

    args.portal_limit = settings.WITHINGS_RATE_LIMIT_PER_MINUTE
    args.portal_burst = settings.WITHINGS_RATE_LIMIT_BURST
    from measurements.models import BloodPressureReading
    from withings.sandbox import bp_group
    from withings.tasks import backfill_step

    stack.start_gunicorn()
    stack.start_workers(2)
    connections = stack.create_participants(args.participants, days=args.days, seed=args.seed)
    subscribe_all(stack, connections)
    groups = sum(len(stack.state.groups(c.withings_userid)) for c in connections)
    print(f"set-up {time.monotonic() - started:.0f} s: {len(connections)} participants, {groups} groups "
          f"upstream (~{groups / args.page_size:.0f}+ back-fill pages), "
          f"sandbox limit {args.sandbox_limit}/min, "
          f"portal limit {args.portal_limit}/min + burst {args.portal_burst}")  # fmt: skip
    for c in connections:
        backfill_step.delay(c.pk)
    uids = [c.withings_userid for c in connections]
    pid_of = {c.withings_userid: c.participant_id for c in connections}

    t0 = time.monotonic()
    window_start = t0 + args.warmup
    window_end = window_start + args.minutes * 60
    synced: dict[int, tuple[float, bool]] = {}  # grpid -> (when, in the window)
    grpid = FIRST_GRPID
    series: list[tuple[float, int, int]] = []
    at_start = at_end = None
    budget = 0.0
    while time.monotonic() < window_end:
        tick = time.monotonic()
        if at_start is None and tick >= window_start:
            at_start = (*stack.api_calls(), stack.state.stats.get("sent_601", 0))
        budget += args.notifications_per_minute / 60
        while budget >= 1:
            budget -= 1
            uid = rng.choice(uids)
            grpid += 1
            synced[grpid] = (time.time(), window_start <= tick)
            group = bp_group(120, 80, 70, date=int(time.time()) - 60, grpid=grpid)
            stack.state.cuff_sync(uid, [group], deliver=True)
        if int(tick - t0) % 10 == 0:
            total, refused = stack.api_calls()
            series.append((tick - t0, total - refused, refused))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    at_end = (*stack.api_calls(), stack.state.stats.get("sent_601", 0))
    backfills_open = _open_backfills()
    window_s = args.minutes * 60

    # Let the window's notifications finish (back-fills keep running meanwhile).
    wanted = {g for g, (_, inside) in synced.items() if inside}
    deadline = time.monotonic() + args.grace
    while time.monotonic() < deadline:
        if BloodPressureReading.objects.filter(grpid__in=wanted).count() == len(wanted):
            break
        time.sleep(2)
    lat = []
    rows = BloodPressureReading.objects.filter(grpid__in=wanted).values_list("grpid", "ingested_at")
    for g, ingested in rows:
        lat.append(ingested.timestamp() - synced[g][0])
    del pid_of
    return report(stack, args, at_start, at_end, window_s, lat, len(wanted), backfills_open, series)


def _open_backfills() -> int:
    from withings.models import WithingsConnection

    return WithingsConnection.objects.filter(backfill_completed_at__isnull=True).count()


def most_in_60s(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def report(stack: Stack, args, at_start, at_end, window_s, lat, n_wanted, backfills_open, series) -> int:
    total = at_end[0] - at_start[0]
    refused = at_end[1] - at_start[1]
    accepted = total - refused
    sent_601 = stack.state.stats.get("sent_601", 0)
    budget = args.sandbox_limit * window_s / 60
    used = accepted / budget
    log = stack.state.request_log()
    recent = Counter(f"{e['endpoint']}.{e['action']}" for e in log)
    retries = stack.worker_log_count(r" retry: Retry in ")
    rl_retries = stack.worker_log_count(r" retry: Retry in .*(?:RateLimit|rate limit|601)")
    print(
        f"\nSync budget: {args.participants} participants back-filling ({args.days} days each) + "
        f"{args.notifications_per_minute:g} notifications/min; 2 workers x 2 processes; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"  limits          sandbox {args.sandbox_limit}/60 s per app (+ identical-call 10 s), "
        f"portal limiter paced at {args.portal_limit}/min, burst {args.portal_burst} for notifications"
    )
    print(
        f"  window          {window_s:.0f} s after {args.warmup:.0f} s warm-up; back-fills still open at "
        f"its end: {backfills_open}/{args.participants}"
    )
    print(f"  calls accepted  {accepted} in the window = {accepted / window_s * 60:.1f}/min")
    print(
        f"  budget used     {used:.1%} of {args.sandbox_limit}/min (portal ceiling "
        f"{args.portal_limit / args.sandbox_limit:.1%})"
    )
    stats = stack.state.stats
    reasons = {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("rate_limited.")}
    accepted_at = sorted(e["t"] for e in log if e.get("status") == 0)
    print(
        f"  601 answers     {sent_601} in the whole run ({refused} in the window; "
        f"by rule: {reasons or '-'}); the sandbox saw at most {most_in_60s(accepted_at)} "
        "accepted calls in any 60 s"
    )
    print(f"  last calls      {dict(recent.most_common())} (sandbox log, last {len(log)})")
    print(f"  task retries    {retries} ({rl_retries} after a rate-limit wait)")
    if lat:
        print(
            f"  notification -> stored  n={len(lat)}/{n_wanted}  p50 {percentile(lat, 50):.1f} s  "
            f"p90 {percentile(lat, 90):.1f} s  p99 {percentile(lat, 99):.1f} s  max {max(lat):.1f} s"
        )
    rates = []
    for (t1, a1, _), (t2, a2, _) in itertools.pairwise(series):
        if t2 > t1:
            rates.append(f"{t1:.0f}s:{(a2 - a1) / (t2 - t1) * 60:.0f}")
    print(f"  accepted/min by 10 s slice  {' '.join(rates[:60])}")
    checks = {
        "budget used >= 90 %": used >= 0.90,
        "no 601": sent_601 == 0,
        "every notification of the window stored": len(lat) == n_wanted,
        "back-fills still had work through the window (demand > budget)": backfills_open > 0,
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISSED'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
