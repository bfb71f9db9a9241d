"""System checks for the Withings settings an operator may get wrong."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from .client import LOOPBACK_HOSTS

#: Withings' budget: calls per rolling minute per application, all users together (docs/withings-api.md).
WITHINGS_CALLS_PER_MINUTE = 120


def _is_sandbox(url: str) -> bool:
    """The sandbox (tests, benchmarks, the demo) runs on loopback and may be given any budget."""
    return urlsplit(url).hostname in LOOPBACK_HOSTS


@checks.register(checks.Tags.compatibility)
def rate_budget_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:  # noqa: ARG001 — Django's check signature
    """The paced limiter grants at most PER_MINUTE + BURST calls in any minute; at or above
    Withings' own limit, calls would be refused with 601 and syncs delayed."""
    per_minute = int(settings.WITHINGS_RATE_LIMIT_PER_MINUTE)
    burst = int(getattr(settings, "WITHINGS_RATE_LIMIT_BURST", 0))
    errors: list[checks.CheckMessage] = []
    if per_minute < 1 or burst < 0:
        errors.append(
            checks.Error(
                "WITHINGS_RATE_LIMIT_PER_MINUTE must be at least 1, WITHINGS_RATE_LIMIT_BURST at least 0.",
                id="withings.E001",
            )
        )
    elif per_minute + burst >= WITHINGS_CALLS_PER_MINUTE and not _is_sandbox(settings.WITHINGS_API_URL):
        errors.append(
            checks.Warning(
                f"WITHINGS_RATE_LIMIT_PER_MINUTE + WITHINGS_RATE_LIMIT_BURST = {per_minute + burst} reaches "
                f"Withings' limit of {WITHINGS_CALLS_PER_MINUTE} calls a minute per application.",
                hint="Keep the sum a few calls below 120 (default 112 + 4) so clock skew never causes a 601.",
                id="withings.W001",
            )
        )
    return errors


@checks.register(checks.Tags.compatibility)
def lock_and_stall_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:  # noqa: ARG001 — Django's check signature
    """A killed task's sync lock must outlive the task (else two syncs overlap), and the back-fill
    scanner must wait for that lock to expire (else its re-queued step only finds the lock held)."""
    time_limit = int(settings.CELERY_TASK_TIME_LIMIT or 0)
    lock_ttl = int(settings.WITHINGS_SYNC_LOCK_TTL)
    stall = int(settings.WITHINGS_BACKFILL_STALL_SECONDS)
    if time_limit and lock_ttl <= time_limit:
        return [
            checks.Warning(
                f"WITHINGS_SYNC_LOCK_TTL ({lock_ttl} s) must exceed CELERY_TASK_TIME_LIMIT ({time_limit} s).",
                id="withings.W002",
            )
        ]
    if stall <= lock_ttl:
        return [
            checks.Warning(
                f"WITHINGS_BACKFILL_STALL_SECONDS ({stall} s) must exceed "
                f"WITHINGS_SYNC_LOCK_TTL ({lock_ttl} s).",
                id="withings.W003",
            )
        ]
    return []
