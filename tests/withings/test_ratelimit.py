"""The shared limiter: paced, never over budget across threads and processes, notifications first."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time

import pytest

from withings.ratelimit import (
    LocalRateLimiter,
    Priority,
    RateLimitTimeout,
    RedisRateLimiter,
    bulk_calls,
    current_priority,
)

from .limiter_worker import acquire_many

EPS = 1e-6


def most_in_interval(grants: list[float], length: float) -> int:
    """The largest number of grants inside any half-open interval of ``length`` seconds."""
    grants = sorted(grants)
    best, start = 0, 0
    for end, t in enumerate(grants):
        while t - grants[start] >= length - EPS:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_threads(limiter, app_key: str, threads: int, per_thread: int, priority=None) -> list[float]:
    grants: list[float] = []
    lock = threading.Lock()

    def work():
        mine = [limiter.acquire(app_key, timeout=30, priority=priority) for _ in range(per_thread)]
        with lock:
            grants.extend(mine)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return grants


@pytest.fixture
def prefix() -> str:
    return f"test:rl:{secrets.token_hex(4)}"


@pytest.fixture(params=["redis", "local"])
def make_limiter(request, limiter_redis_url, prefix):
    """Both implementations keep the same contract."""

    def make(*, limit: int, window: float, burst: int = 0):
        if request.param == "local":
            return LocalRateLimiter(limit=limit, window=window, burst=burst)
        return RedisRateLimiter(limiter_redis_url, limit=limit, window=window, burst=burst, prefix=prefix)

    return make


def test_threads_and_processes_never_exceed_the_budget_and_are_paced(limiter_redis_url, prefix):
    limit, window, burst = 20, 0.5, 3
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        remote = pool.starmap_async(
            acquire_many, [(limiter_redis_url, prefix, limit, window, burst, "app-a", 10)] * 3
        )
        limiter = RedisRateLimiter(limiter_redis_url, limit=limit, window=window, burst=burst, prefix=prefix)
        local = run_threads(limiter, "app-a", threads=8, per_thread=5)
        grants = local + [g for chunk in remote.get(timeout=60) for g in chunk]

    assert len(grants) == 70
    # Never more than limit + burst in any interval shorter than the window ...
    assert most_in_interval(grants, window) <= limit + burst
    # ... and paced, not bunched: a quarter window holds a quarter of the budget plus the burst.
    assert most_in_interval(grants, window / 4) <= limit / 4 + burst + 1
    # The budget is used, not just respected: 70 grants cannot be faster than the pace allows.
    interval = window / limit
    assert max(grants) - min(grants) >= (70 - 1 - burst) * interval - 0.01


def test_bulk_calls_are_paced_strictly(make_limiter):
    limiter = make_limiter(limit=40, window=1.0, burst=5)
    grants = run_threads(limiter, "app-a", threads=4, per_thread=5, priority=Priority.BULK)
    gaps = [b - a for a, b in zip(sorted(grants), sorted(grants)[1:], strict=False)]
    assert len(grants) == 20
    assert min(gaps) >= 1.0 / 40 - 0.002  # one slot each, the burst is never used


def test_bulk_never_takes_the_burst_reserved_for_notifications(make_limiter):
    limiter = make_limiter(limit=10, window=10.0, burst=2)  # one slot a second
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == 0
    wait, _ = limiter.try_acquire("app-a", Priority.BULK)
    assert 0.9 < wait <= 1.0  # bulk waits for the next due slot ...
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0  # ... a notification does not
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0
    wait, _ = limiter.try_acquire("app-a", Priority.INTERACTIVE)
    assert 0.9 < wait <= 1.0  # burst of 2 used up: now interactive waits too
    wait, _ = limiter.try_acquire("app-a", Priority.BULK)
    assert 2.9 < wait <= 3.0  # and bulk waits until the pace has caught up with the burst


def test_a_notification_is_granted_at_once_while_bulk_saturates_the_budget(make_limiter):
    limiter = make_limiter(limit=20, window=1.0, burst=2)  # a slot every 50 ms
    stop = threading.Event()
    bulk_grants: list[float] = []

    def backfill():
        while not stop.is_set():
            bulk_grants.append(limiter.acquire("app-a", timeout=5, priority=Priority.BULK))

    workers = [threading.Thread(target=backfill) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.3)
        latencies, notification_grants = [], []
        for _ in range(5):
            asked = time.monotonic()
            notification_grants.append(limiter.acquire("app-a", timeout=5, priority=Priority.INTERACTIVE))
            latencies.append(time.monotonic() - asked)
            time.sleep(0.15)
    finally:
        stop.set()
        for w in workers:
            w.join()

    assert max(latencies) < 0.03, latencies  # no waiting behind four saturating back-fills
    everything = bulk_grants + notification_grants
    assert most_in_interval(everything, 1.0) <= 20 + 2
    assert len(bulk_grants) >= 15  # the back-fills still used the idle slots


def test_priority_is_taken_from_the_calling_context():
    assert current_priority() is Priority.INTERACTIVE
    with bulk_calls():
        assert current_priority() is Priority.BULK
        limiter = LocalRateLimiter(limit=10, window=10.0, burst=3)
        limiter.acquire("app-a")
        assert limiter.try_acquire("app-a")[0] > 0.9  # bulk: no burst
    assert current_priority() is Priority.INTERACTIVE
    assert limiter.try_acquire("app-a")[0] == 0


def test_budgets_are_per_app(make_limiter):
    limiter = make_limiter(limit=2, window=10)
    limiter.acquire("app-a")
    assert 4.9 < limiter.try_acquire("app-a")[0] <= 5
    assert limiter.try_acquire("app-b")[0] == 0


def test_acquire_gives_up_after_its_timeout(make_limiter):
    limiter = make_limiter(limit=1, window=10)
    limiter.acquire("app-a")
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as raised:
        limiter.acquire("app-a", timeout=0.2)
    assert time.monotonic() - started < 0.1  # no pointless sleeping when the wait is too long
    assert 9 < raised.value.wait_seconds <= 10


def test_a_601_pause_is_shared_by_every_process(limiter_redis_url, prefix):
    first = RedisRateLimiter(limiter_redis_url, limit=100, window=60, prefix=prefix)
    second = RedisRateLimiter(limiter_redis_url, limit=100, window=60, prefix=prefix)
    first.pause("app-a", 0.3)
    started = time.monotonic()
    second.acquire("app-a")
    assert time.monotonic() - started >= 0.29
    assert second.try_acquire("app-b")[0] == 0
    # A shorter pause never shortens a longer one.
    first.pause("app-a", 5)
    first.pause("app-a", 1)
    assert 4 < second.try_acquire("app-a")[0] <= 5


def test_local_limiter_pause():
    limiter = LocalRateLimiter(limit=100, window=60)
    limiter.pause("app-a", 0.2)
    assert limiter.try_acquire("app-a")[0] > 0.1
    assert limiter.try_acquire("app-b")[0] == 0


@pytest.mark.django_db
def test_every_upstream_call_goes_through_the_limiter(sandbox, settings):
    from withings.client import api_post
    from withings.errors import WithingsRateLimited
    from withings.selectors import env_app_credentials

    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 2
    settings.WITHINGS_RATE_LIMIT_BURST = 1
    settings.WITHINGS_RATE_LIMIT_MAX_WAIT = 0.1
    credentials = env_app_credentials()
    params = {"action": "getnonce", "client_id": "x", "timestamp": "1", "signature": "y"}
    for _ in range(2):
        with pytest.raises(Exception, match="status 503"):
            api_post(credentials, "/v2/signature", params)
    with pytest.raises(WithingsRateLimited):
        api_post(credentials, "/v2/signature", params)
    assert sandbox.state.stats["signature.getnonce"] == 2


def test_the_budget_check_warns_before_withings_would_refuse_calls(settings):
    from withings.checks import rate_budget_check

    settings.WITHINGS_API_URL = "https://wbsapi.withings.net"
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE, settings.WITHINGS_RATE_LIMIT_BURST = 112, 4
    assert rate_budget_check() == []  # the defaults
    settings.WITHINGS_RATE_LIMIT_BURST = 8
    assert [m.id for m in rate_budget_check()] == ["withings.W001"]
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 0
    assert [m.id for m in rate_budget_check()] == ["withings.E001"]
    settings.WITHINGS_API_URL = "http://127.0.0.1:8765"  # the sandbox may be given any budget
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 100_000
    assert rate_budget_check() == []
