"""The shared limiter: paced, never over budget across threads and processes, notifications first.

The pacing is asserted on a fake clock (the limiter sleeps on it, so nothing depends on how fast
this machine is); the Redis limiter, which decides on Redis' clock, is checked for the order and the
number of its grants, never for how long a call took."""

from __future__ import annotations

import itertools
import multiprocessing
import secrets
import threading

import pytest

from withings.ratelimit import (
    LocalRateLimiter,
    Priority,
    RateLimitTimeout,
    RedisRateLimiter,
    bulk_calls,
    current_priority,
)
from withings.sandbox import FakeClock

from .limiter_worker import acquire_many

EPS = 1e-6
JITTER = 0.005  # acquire() sleeps up to 4 ms longer than the wait, so waiters do not ask in lockstep
T0 = 1_000.0  # small, so float sums of the clock stay exact to a microsecond


class FakeTime(FakeClock):
    """The limiter's clock and its sleep: sleeping moves the clock, nothing else does."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


def most_in_interval(grants: list[float], length: float) -> int:
    """The largest number of grants inside any half-open interval of ``length`` seconds."""
    grants = sorted(grants)
    best, start = 0, 0
    for end, t in enumerate(grants):
        while t - grants[start] >= length - EPS:
            start += 1
        best = max(best, end - start + 1)
    return best


def gaps(grants: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(grants))]


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
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_limiter(fake):
    def make(*, limit: int, window: float, burst: int = 0) -> LocalRateLimiter:
        return LocalRateLimiter(limit=limit, window=window, burst=burst, clock=fake, sleep=fake.sleep)

    return make


@pytest.fixture
def prefix() -> str:
    return f"test:rl:{secrets.token_hex(4)}"


def test_bulk_calls_are_paced_one_slot_apart(make_limiter, fake):
    limiter = make_limiter(limit=40, window=1.0, burst=5)
    grants = [limiter.acquire("app-a", priority=Priority.BULK) for _ in range(20)]

    assert grants[0] == T0  # the first slot is due at once
    assert len(fake.sleeps) == 19  # every later call waited for its slot, the burst was never used
    assert all(1 / 40 - EPS <= gap <= 1 / 40 + JITTER for gap in gaps(grants))


def test_interactive_calls_run_up_to_the_burst_ahead_of_the_pace(make_limiter, fake):
    limiter = make_limiter(limit=10, window=10.0, burst=2)  # one slot a second
    grants = [limiter.acquire("app-a", priority=Priority.INTERACTIVE) for _ in range(5)]

    assert grants[:3] == [T0] * 3  # the due slot and the two of the burst, at once
    assert len(fake.sleeps) == 2
    assert 1.0 - EPS <= grants[3] - T0 <= 1.0 + JITTER  # then the pace
    assert 2.0 - EPS <= grants[4] - T0 <= 2.0 + 2 * JITTER
    assert most_in_interval(grants, 10.0) <= 10 + 2


def test_bulk_never_takes_the_burst_reserved_for_notifications(make_limiter):
    limiter = make_limiter(limit=10, window=10.0, burst=2)  # one slot a second
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == 0
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == pytest.approx(1.0)  # bulk waits for the
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0  # next due slot; a notification
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0  # does not
    # The burst of 2 is used up: now interactive waits too ...
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == pytest.approx(1.0)
    # ... and bulk waits until the pace has caught up with the burst.
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == pytest.approx(3.0)


def test_a_notification_is_granted_at_once_while_bulk_saturates_the_budget(make_limiter, fake):
    limiter = make_limiter(limit=20, window=1.0, burst=2)  # a slot every 50 ms
    bulk_grants, notification_grants = [], []
    for step in range(200):  # back-fills take every slot, for ten seconds
        bulk_grants.append(limiter.acquire("app-a", timeout=5, priority=Priority.BULK))
        if step % 7 == 3:
            sleeps_before, asked_at = len(fake.sleeps), fake()
            notification_grants.append(limiter.acquire("app-a", timeout=5, priority=Priority.INTERACTIVE))
            assert len(fake.sleeps) == sleeps_before  # no waiting behind the saturating back-fills
            assert notification_grants[-1] == asked_at

    assert len(notification_grants) == 29
    assert most_in_interval(bulk_grants + notification_grants, 1.0) <= 20 + 2
    # The back-fills used every slot the notifications left: 20 grants a second, no idle slot.
    span, slots_before_last = max(bulk_grants) - T0, (200 - 1 + 29 - 1) / 20
    assert slots_before_last - EPS <= span <= slots_before_last + len(fake.sleeps) * JITTER


def test_threads_never_exceed_the_budget(make_limiter):
    limiter = make_limiter(limit=20, window=0.5, burst=3)
    grants = run_threads(limiter, "app-a", threads=8, per_thread=10)

    assert len(grants) == 80
    assert most_in_interval(grants, 0.5) <= 20 + 3
    assert most_in_interval(grants, 0.5 / 4) <= 20 / 4 + 3 + 1  # paced, not bunched


def test_priority_is_taken_from_the_calling_context(make_limiter):
    limiter = make_limiter(limit=10, window=10.0, burst=3)
    assert current_priority() is Priority.INTERACTIVE
    with bulk_calls():
        assert current_priority() is Priority.BULK
        limiter.acquire("app-a")
        assert limiter.try_acquire("app-a")[0] == pytest.approx(1.0)  # bulk: no burst
    assert current_priority() is Priority.INTERACTIVE
    assert limiter.try_acquire("app-a")[0] == 0


def test_budgets_are_per_app(make_limiter):
    limiter = make_limiter(limit=2, window=10)
    limiter.acquire("app-a")
    assert limiter.try_acquire("app-a")[0] == pytest.approx(5.0)
    assert limiter.try_acquire("app-b")[0] == 0


def test_acquire_gives_up_at_once_when_the_slot_is_beyond_its_timeout(make_limiter, fake):
    limiter = make_limiter(limit=1, window=10)
    limiter.acquire("app-a")
    with pytest.raises(RateLimitTimeout) as raised:
        limiter.acquire("app-a", timeout=0.2)
    assert fake.sleeps == []  # no pointless sleeping when the wait is too long
    assert raised.value.wait_seconds == pytest.approx(10.0)
    assert fake() == T0

    granted = limiter.acquire("app-a", timeout=15)  # within the timeout: waits for the slot
    assert len(fake.sleeps) == 1
    assert 10.0 - EPS <= granted - T0 <= 10.0 + JITTER


def test_local_limiter_pause(make_limiter):
    limiter = make_limiter(limit=100, window=60)
    limiter.pause("app-a", 0.3)
    assert limiter.try_acquire("app-a")[0] == pytest.approx(0.3)
    assert limiter.try_acquire("app-b")[0] == 0
    granted = limiter.acquire("app-a")
    assert 0.3 - EPS <= granted - T0 <= 0.3 + JITTER
    # A shorter pause never shortens a longer one.
    limiter.pause("app-a", 5)
    limiter.pause("app-a", 1)
    assert limiter.try_acquire("app-a")[0] == pytest.approx(5.0)


# Against real Redis the decisions are on Redis' clock: these assert the order of grants and refusals,
# never a latency (a wait shrinks by the time between two calls, so only bounds a slow machine keeps).


def test_redis_bulk_never_takes_the_burst_reserved_for_notifications(limiter_redis_url, prefix):
    limiter = RedisRateLimiter(limiter_redis_url, limit=10, window=10, burst=2, prefix=prefix)
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == 0
    assert 0 < limiter.try_acquire("app-a", Priority.BULK)[0] <= 1.0  # bulk waits for the next slot
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0  # ... a notification does not
    assert limiter.try_acquire("app-a", Priority.INTERACTIVE)[0] == 0
    interactive_wait = limiter.try_acquire("app-a", Priority.INTERACTIVE)[0]
    assert 0 < interactive_wait <= 1.0  # the burst of 2 is used up
    assert limiter.try_acquire("app-a", Priority.BULK)[0] > interactive_wait + 1  # bulk: after the burst


def test_redis_budgets_are_per_app(limiter_redis_url, prefix):
    limiter = RedisRateLimiter(limiter_redis_url, limit=2, window=10, prefix=prefix)
    limiter.acquire("app-a")
    assert limiter.try_acquire("app-a")[0] > 0
    assert limiter.try_acquire("app-b")[0] == 0


def test_redis_601_pause_is_shared_by_every_process(limiter_redis_url, prefix):
    first = RedisRateLimiter(limiter_redis_url, limit=100, window=60, prefix=prefix)
    second = RedisRateLimiter(limiter_redis_url, limit=100, window=60, prefix=prefix)
    _granted, before_pause = second.try_acquire("app-b")  # Redis' time now
    first.pause("app-a", 0.3)
    assert second.acquire("app-a") - before_pause >= 0.3 - 0.001  # granted on Redis' clock after it
    # A shorter pause never shortens a longer one.
    first.pause("app-c", 5)
    first.pause("app-c", 1)
    assert second.try_acquire("app-c")[0] > 1
    assert second.try_acquire("app-d")[0] == 0


def test_redis_deadline_is_on_the_callers_clock(limiter_redis_url, prefix):
    fake = FakeTime()
    limiter = RedisRateLimiter(
        limiter_redis_url, limit=10, window=10, prefix=prefix, clock=fake, sleep=fake.sleep
    )
    assert limiter.try_acquire("app-a", Priority.BULK)[0] == 0
    with pytest.raises(RateLimitTimeout) as raised:
        limiter.acquire("app-a", timeout=0.2, priority=Priority.BULK)
    assert (fake.sleeps, fake()) == ([], T0)  # a slot beyond the deadline is refused without sleeping
    assert "next slot in" in str(raised.value)


@pytest.mark.slow
def test_threads_and_processes_never_exceed_the_budget_and_are_paced(limiter_redis_url, prefix):
    """Three processes and eight threads on one Redis budget; counted on the grants' Redis times."""
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
