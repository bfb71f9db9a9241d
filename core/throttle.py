"""A small fixed-window limiter on the shared cache (Redis in production) for the participant pages:
guessing invitation or status-link tokens, and flooding the open enrollment link."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or — behind N trusted proxies (PORTAL_TRUSTED_PROXY_COUNT) — the address the
    outermost trusted proxy saw in X-Forwarded-For."""
    proxies = settings.PORTAL_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "unknown")


def exceeded(request: HttpRequest, scope: str, *, limit: int, window: int) -> bool:
    """Count one hit for this client in `scope`; True once more than `limit` hits in `window` s."""
    return exceeded_for(f"{scope}:{client_ip(request)}", limit=limit, window=window)


def exceeded_for(subject: str, *, limit: int, window: int) -> bool:
    """The same for any subject (e.g. an API token): count a hit, True once over `limit`."""
    key = f"throttle:{subject}"
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return False


def blocked(request: HttpRequest, scope: str, *, limit: int) -> bool:
    """Whether `scope` is already over `limit` for this client (without counting a hit)."""
    return (cache.get(f"throttle:{scope}:{client_ip(request)}") or 0) >= limit
