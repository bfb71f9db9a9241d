"""Run in a separate process by test_ratelimit (imports nothing of Django)."""

from __future__ import annotations

from withings.ratelimit import RedisRateLimiter


def acquire_many(
    url: str, prefix: str, limit: int, window: float, burst: int, app_key: str, n: int
) -> list[float]:
    limiter = RedisRateLimiter(url, limit=limit, window=window, burst=burst, prefix=prefix)
    return [limiter.acquire(app_key, timeout=30) for _ in range(n)]
