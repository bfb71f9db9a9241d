"""`/healthz/`: database, cache/broker and worker heartbeat, 200 only when all required parts are up,
and the running release (``version``: PORTAL_VERSION).

It also shows stalled work (``work``): back-fills with no progress for WITHINGS_BACKFILL_STALL_SECONDS
and export jobs whose task died. Those set ``status`` to "degraded" (still HTTP 200: the web
server itself is fine, and the scanners re-queue such work) so monitoring can alert on them."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.utils.timezone import now
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

HEARTBEAT_KEY = "portal:worker-heartbeat"


def record_worker_heartbeat() -> None:
    cache.set(HEARTBEAT_KEY, time.time(), timeout=24 * 3600)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _check_cache() -> dict:
    try:
        cache.set("portal:healthz", "1", timeout=10)
        ok = cache.get("portal:healthz") == "1"
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": ok, "backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def _check_broker() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "in-process"}
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "mode": "redis"}


def _check_worker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "in-process"}
    try:
        last = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if last is None:
        return {"ok": False, "error": "no heartbeat yet"}
    age = time.time() - float(last)
    return {
        "ok": age <= settings.WORKER_HEARTBEAT_MAX_AGE,
        "last_heartbeat_age_seconds": round(age, 1),
    }


def _check_work() -> dict:
    from measurements.exports.services import stalled_export_jobs
    from measurements.tasks import EXPORT_TIME_LIMIT
    from withings.selectors import stalled_backfills

    try:
        backfills = stalled_backfills()
        since = Coalesce("backfill_progress_at", "linked_at")
        oldest = backfills.annotate(since=since).order_by("since").values_list("since", flat=True).first()
        report = {
            "stalled_backfills": backfills.count(),
            "stuck_exports": stalled_export_jobs(running_longer_than=EXPORT_TIME_LIMIT + 60).count(),
        }
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if oldest is not None:
        report["oldest_backfill_stall_seconds"] = round((now() - oldest).total_seconds())
    return {"ok": not (report["stalled_backfills"] or report["stuck_exports"]), **report}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:  # noqa: ARG001 — a view
    checks = {
        "database": _check_database(),
        "cache": _check_cache(),
        "broker": _check_broker(),
        "worker": _check_worker(),
    }
    ok = all(part["ok"] for part in checks.values())
    work = _check_work() if checks["database"]["ok"] else {"ok": False, "error": "database down"}
    status = "fail" if not ok else "ok" if work["ok"] else "degraded"
    body = {"status": status, "version": settings.PORTAL_VERSION, **checks, "work": work}
    return JsonResponse(body, status=200 if ok else 503)
