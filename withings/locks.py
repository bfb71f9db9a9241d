"""One sync at a time per connection, across every worker process (Redis lock; in-process fallback)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache

from django.conf import settings
from redis.exceptions import LockError

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


@contextmanager
def exclusive(name: str, *, ttl: float = 600.0, wait: float = 0.0) -> Iterator[bool]:
    """Yield True when this process holds `name`, False when someone else does.

    The Redis lock expires after `ttl` seconds so a killed worker cannot hold it forever; a sync
    therefore must finish (or give up) well within `ttl`.
    """
    if settings.REDIS_URL:
        lock = _redis(settings.REDIS_URL).lock(
            f"portal:lock:{name}", timeout=ttl, blocking_timeout=wait, thread_local=False
        )
        acquired = lock.acquire(blocking=wait > 0, token=uuid.uuid4().hex.encode())
        try:
            yield bool(acquired)
        finally:
            if acquired:
                with suppress(LockError):  # expired meanwhile: nothing to release
                    lock.release()
        return
    with _local_guard:
        local = _local_locks.setdefault(name, threading.Lock())
    acquired = local.acquire(timeout=wait) if wait > 0 else local.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            local.release()
