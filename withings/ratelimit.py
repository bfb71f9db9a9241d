"""One rate limiter for every upstream Withings call, shared by all processes through Redis.

Withings allows 120 calls per rolling minute per application (``client_id``), all users together.
That budget, not CPU, decides how fresh the data is, so the limiter has two jobs: use the budget
fully and never exceed it, and let a notification's call go first when back-fills want every slot.

**Pacing (GCRA).** Calls are granted at a steady pace, one every ``window / limit`` seconds, not
``limit`` at once at the start of each window: a sliding-window log would hand out a whole minute's
budget in a few seconds under load, after which every waiter sees a slot ~50 s away, gives up and
turns into a delayed task retry that ignores queue priority (measured: notification p99 45 s while
back-fills ran). With pacing, a waiter is at most a few slots (~0.5 s each) from a grant.

**Two priorities.** ``INTERACTIVE`` calls (notification syncs, linking, token refreshes, withdrawal)
may run up to ``burst`` slots ahead of the pace; ``BULK`` calls (history back-fill, the safety-net
poll, device and subscription checks) only get a slot that is due now. So back-fills fill every
idle slot, while a notification's call is granted at once; in the long run both are held to
``limit`` per ``window``. Guarantee: in any interval shorter than ``window`` there are at most
``limit + burst`` grants (the tests assert it), so ``limit + burst`` must stay below Withings' 120.
The priority of a call is the calling code's context (``bulk_calls()``), so the HTTP client needs
no extra argument threaded through every service.

Decisions are made atomically by a Lua script on Redis' own clock (workers on several machines
agree). A 601 answer sets a shared pause for that app (``pause()``), honoured by every process.
Without ``REDIS_URL`` (the in-process demo) an equivalent in-process limiter is used. No library
offers GCRA with priority lanes on plain Redis (redis-cell needs a server module; ``limits`` has
fixed/moving windows only), so this is ~40 lines of our own.

Nothing here imports Django at module level, so worker processes and tests can use it directly.
Both limiters take the clock and the sleep they wait with (``clock``, ``sleep``), so tests can drive
the pacing with a fake clock; the Redis one decides on Redis' clock and uses its own only for the
caller's deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import redis

from .errors import WithingsRateLimited, WithingsTransientError

DEFAULT_ACQUIRE_TIMEOUT = 30.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Priority(enum.Enum):
    INTERACTIVE = "interactive"
    BULK = "bulk"


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "withings_call_priority", default=Priority.INTERACTIVE
)


@contextlib.contextmanager
def bulk_calls() -> Iterator[None]:
    """Upstream calls made inside this block take only slots that are due (never the burst)."""
    token = _priority.set(Priority.BULK)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    return _priority.get()


# KEYS: theoretical arrival time (µs), pause flag. ARGV: interval (µs), tolerance (µs) of this call.
# Grant when the next slot is due within `tolerance`; the slot then moves one interval on.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {paused * 1000, now} end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then return {tat - now - tolerance, now} end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {0, now}
"""

_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class RateLimitTimeout(WithingsRateLimited):
    """No slot became free within the caller's timeout."""


class _Pacing:
    """The arithmetic both implementations share."""

    def __init__(self, limit: int, window: float, burst: int, clock: Clock, sleep: Sleep) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if burst < 0:
            raise ValueError("burst must not be negative")
        self.limit = limit
        self.window = window
        self.burst = burst
        self.interval = window / limit
        self._clock = clock
        self._sleep = sleep

    def tolerance(self, priority: Priority) -> float:
        return self.burst * self.interval if priority is Priority.INTERACTIVE else 0.0

    def acquire(
        self, app_key: str, timeout: float = DEFAULT_ACQUIRE_TIMEOUT, priority: Priority | None = None
    ) -> float:
        """Sleep until a slot is granted (returns the grant time) or raise ``RateLimitTimeout``."""
        priority = priority or current_priority()
        deadline = self._clock() + timeout
        while True:
            wait, now = self.try_acquire(app_key, priority)
            if wait <= 0:
                return now
            remaining = deadline - self._clock()
            if wait > remaining:
                raise RateLimitTimeout(
                    f"rate limit budget exhausted for this app (next slot in {wait:.1f}s)",
                    wait_seconds=max(wait, 1.0),
                )
            # A little jitter so waiting workers do not all ask at the same microsecond.
            self._sleep(wait + secrets.randbelow(5) / 1000)

    def try_acquire(self, app_key: str, priority: Priority | None = None) -> tuple[float, float]:
        raise NotImplementedError


class RedisRateLimiter(_Pacing):
    def __init__(
        self,
        url: str,
        *,
        limit: int,
        window: float = 60.0,
        burst: int = 0,
        prefix: str = "withings:rl",
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(limit, window, burst, clock, sleep)
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._pause = self._redis.register_script(_PAUSE)

    def _keys(self, app_key: str) -> list[str]:
        return [f"{self.prefix}:{app_key}:tat", f"{self.prefix}:{app_key}:pause"]

    def try_acquire(self, app_key: str, priority: Priority | None = None) -> tuple[float, float]:
        """One attempt: ``(0, grant_time)`` when granted, else ``(seconds_to_wait, now)``."""
        tolerance = self.tolerance(priority or current_priority())
        try:
            wait_us, now_us = self._acquire(
                keys=self._keys(app_key), args=[round(self.interval * 1e6), round(tolerance * 1e6)]
            )
        except redis.RedisError as exc:
            raise WithingsTransientError(f"rate limiter unavailable: {type(exc).__name__}") from exc
        return int(wait_us) / 1_000_000, int(now_us) / 1_000_000

    def pause(self, app_key: str, seconds: float) -> None:
        """Withings said 601 + ``wait_seconds``: no process calls for this app until then."""
        try:
            self._pause(keys=self._keys(app_key)[1:], args=[max(1, int(seconds * 1000))])
        except redis.RedisError as exc:
            raise WithingsTransientError(f"rate limiter unavailable: {type(exc).__name__}") from exc

    def reset(self, app_key: str) -> None:
        self._redis.delete(*self._keys(app_key))


class LocalRateLimiter(_Pacing):
    """The same contract inside one process (threads), for the demo without Redis. Its grants, pauses
    and the caller's deadline are all on ``clock``."""

    def __init__(
        self,
        *,
        limit: int,
        window: float = 60.0,
        burst: int = 0,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(limit, window, burst, clock, sleep)
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}

    def try_acquire(self, app_key: str, priority: Priority | None = None) -> tuple[float, float]:
        tolerance = self.tolerance(priority or current_priority())
        with self._lock:
            now = self._clock()
            paused = self._paused_until.get(app_key, 0.0) - now
            if paused > 0:
                return paused, now
            tat = max(self._tat.get(app_key, 0.0), now)
            if tat - now > tolerance:
                return tat - now - tolerance, now
            self._tat[app_key] = tat + self.interval
            return 0.0, now

    def pause(self, app_key: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._paused_until[app_key] = max(until, self._paused_until.get(app_key, 0.0))

    def reset(self, app_key: str) -> None:
        with self._lock:
            self._tat.pop(app_key, None)
            self._paused_until.pop(app_key, None)


_limiters: dict[tuple, RedisRateLimiter | LocalRateLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> RedisRateLimiter | LocalRateLimiter:
    """The process-wide limiter: ``REDIS_URL``, ``WITHINGS_RATE_LIMIT_PER_MINUTE`` and ``_BURST``."""
    from django.conf import settings

    key = (
        settings.REDIS_URL,
        int(settings.WITHINGS_RATE_LIMIT_PER_MINUTE),
        int(getattr(settings, "WITHINGS_RATE_LIMIT_BURST", 0)),
    )
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            url, per_minute, burst = key
            if url:
                limiter = RedisRateLimiter(url, limit=per_minute, burst=burst)
            else:
                limiter = LocalRateLimiter(limit=per_minute, burst=burst)
            _limiters[key] = limiter
        return limiter
