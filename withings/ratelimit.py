"""One rate limiter for every upstream Withings call, shared by all processes through Redis.

A sliding-window log per Withings app (``client_id``): at most ``limit`` grants in any window of
``window`` seconds, decided atomically by a Lua script on Redis' own clock (so workers on several
machines agree). A 601 answer sets a shared pause for that app (``pause()``), honoured by every
process. Without ``REDIS_URL`` (the in-process demo) an equivalent in-process limiter is used.

Nothing here imports Django at module level, so worker processes and tests can use it directly.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque

import redis

from .errors import WithingsRateLimited, WithingsTransientError

DEFAULT_ACQUIRE_TIMEOUT = 30.0

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {paused * 1000, now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {0, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tonumber(oldest[2]) + window - now, now}
"""

_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class RateLimitTimeout(WithingsRateLimited):
    """No slot became free within the caller's timeout."""


class RedisRateLimiter:
    def __init__(self, url: str, *, limit: int, window: float = 60.0, prefix: str = "withings:rl") -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._pause = self._redis.register_script(_PAUSE)

    def _keys(self, app_key: str) -> list[str]:
        return [f"{self.prefix}:{app_key}:log", f"{self.prefix}:{app_key}:pause"]

    def try_acquire(self, app_key: str) -> tuple[float, float]:
        """One attempt: ``(0, grant_time)`` when granted, else ``(seconds_to_wait, now)``."""
        try:
            wait_us, now_us = self._acquire(
                keys=self._keys(app_key),
                args=[self.limit, int(self.window * 1_000_000), secrets.token_hex(6)],
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

    def acquire(self, app_key: str, timeout: float = DEFAULT_ACQUIRE_TIMEOUT) -> float:
        return _blocking_acquire(self, app_key, timeout)


class LocalRateLimiter:
    """The same contract inside one process (threads), for the demo without Redis."""

    def __init__(self, *, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._log: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    def try_acquire(self, app_key: str) -> tuple[float, float]:
        with self._lock:
            now = time.time()
            paused = self._paused_until.get(app_key, 0.0) - now
            if paused > 0:
                return paused, now
            log = self._log.setdefault(app_key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) < self.limit:
                log.append(now)
                return 0.0, now
            return log[0] + self.window - now, now

    def pause(self, app_key: str, seconds: float) -> None:
        with self._lock:
            until = time.time() + seconds
            self._paused_until[app_key] = max(until, self._paused_until.get(app_key, 0.0))

    def reset(self, app_key: str) -> None:
        with self._lock:
            self._log.pop(app_key, None)
            self._paused_until.pop(app_key, None)

    def acquire(self, app_key: str, timeout: float = DEFAULT_ACQUIRE_TIMEOUT) -> float:
        return _blocking_acquire(self, app_key, timeout)


def _blocking_acquire(limiter, app_key: str, timeout: float) -> float:
    """Sleep until a slot is granted (returns the grant time) or raise ``RateLimitTimeout``."""
    deadline = time.monotonic() + timeout
    while True:
        wait, now = limiter.try_acquire(app_key)
        if wait <= 0:
            return now
        remaining = deadline - time.monotonic()
        if wait > remaining:
            raise RateLimitTimeout(
                f"rate limit budget exhausted for this app (next slot in {wait:.1f}s)",
                wait_seconds=max(wait, 1.0),
            )
        # A little jitter so waiting workers do not stampede the slot that frees up.
        time.sleep(wait + secrets.randbelow(20) / 1000)


_limiters: dict[tuple, RedisRateLimiter | LocalRateLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> RedisRateLimiter | LocalRateLimiter:
    """The process-wide limiter configured by ``REDIS_URL`` and ``WITHINGS_RATE_LIMIT_PER_MINUTE``."""
    from django.conf import settings

    key = (settings.REDIS_URL, int(settings.WITHINGS_RATE_LIMIT_PER_MINUTE))
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            url, per_minute = key
            limiter = RedisRateLimiter(url, limit=per_minute) if url else LocalRateLimiter(limit=per_minute)
            _limiters[key] = limiter
        return limiter
