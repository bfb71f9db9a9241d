"""The shared limiter: many threads and several processes together never exceed the budget."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time

import pytest

from withings.ratelimit import LocalRateLimiter, RateLimitTimeout, RedisRateLimiter

from .limiter_worker import acquire_many

LIMIT, WINDOW = 10, 0.25


def assert_within_budget(grants: list[float], limit: int, window: float) -> None:
    grants = sorted(grants)
    for i in range(len(grants) - limit):
        assert grants[i + limit] - grants[i] >= window - 1e-6, (i, grants[i : i + limit + 1])


def run_threads(limiter, app_key: str, threads: int, per_thread: int) -> list[float]:
    grants: list[float] = []
    lock = threading.Lock()

    def work():
        mine = [limiter.acquire(app_key, timeout=30) for _ in range(per_thread)]
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


def test_threads_and_processes_never_exceed_the_budget(limiter_redis_url, prefix):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        remote = pool.starmap_async(
            acquire_many, [(limiter_redis_url, prefix, LIMIT, WINDOW, "app-a", 10)] * 3
        )
        limiter = RedisRateLimiter(limiter_redis_url, limit=LIMIT, window=WINDOW, prefix=prefix)
        local = run_threads(limiter, "app-a", threads=8, per_thread=5)
        grants = local + [g for chunk in remote.get(timeout=60) for g in chunk]

    assert len(grants) == 70
    assert_within_budget(grants, LIMIT, WINDOW)
    # The budget is also used, not just respected: 70 grants need at least 6 full windows.
    assert max(grants) - min(grants) >= 6 * WINDOW - 1e-6


def test_budgets_are_per_app(limiter_redis_url, prefix):
    limiter = RedisRateLimiter(limiter_redis_url, limit=2, window=10, prefix=prefix)
    limiter.acquire("app-a")
    limiter.acquire("app-a")
    assert limiter.try_acquire("app-a")[0] > 9
    assert limiter.try_acquire("app-b")[0] == 0


def test_acquire_gives_up_after_its_timeout(limiter_redis_url, prefix):
    limiter = RedisRateLimiter(limiter_redis_url, limit=1, window=10, prefix=prefix)
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


def test_local_limiter_same_contract():
    limiter = LocalRateLimiter(limit=LIMIT, window=WINDOW)
    grants = run_threads(limiter, "app-a", threads=8, per_thread=5)
    assert len(grants) == 40
    assert_within_budget(grants, LIMIT, WINDOW)
    limiter.pause("app-a", 0.2)
    assert limiter.try_acquire("app-a")[0] > 0.1


@pytest.mark.django_db
def test_every_upstream_call_goes_through_the_limiter(sandbox, settings):
    from withings.client import api_post
    from withings.errors import WithingsRateLimited
    from withings.selectors import env_app_credentials

    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 2
    settings.WITHINGS_RATE_LIMIT_MAX_WAIT = 0.1
    credentials = env_app_credentials()
    params = {"action": "getnonce", "client_id": "x", "timestamp": "1", "signature": "y"}
    for _ in range(2):
        with pytest.raises(Exception, match="status 503"):
            api_post(credentials, "/v2/signature", params)
    with pytest.raises(WithingsRateLimited):
        api_post(credentials, "/v2/signature", params)
    assert sandbox.state.stats["signature.getnonce"] == 2
