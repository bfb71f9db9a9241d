"""`/metrics` (Prometheus text format): event counters from Redis (core.metrics) and the state of the
portal computed at scrape time from PostgreSQL and Redis (``StateCollector``): inbox, sync lag per
Withings app, connections by status, Celery queue depths, export jobs, worker heartbeat age.

State is read when scraped rather than kept in gauges, so every process — and a restart — agrees,
and nothing has to be updated on the hot paths. Access: ``METRICS_TOKEN`` (bearer) or
``METRICS_ALLOWED_IPS``; otherwise 401 (a token is configured) or 403."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils.timezone import now
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from core import metrics

logger = logging.getLogger(__name__)

QUANTILES = (0.5, 0.9, 0.99)
#: kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in lists beside the queue's own.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
#: connections that are expected to sync (the others show in portal_withings_connections).
SYNCING = ("active", "refresh_failed")


class RequestMetricsMiddleware:
    """Counts every request by view name (never the path: it may hold a bearer secret) and status,
    and times it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        method, status = _method(request.method), str(response.status_code)
        metrics.count_and_observe(
            "portal_http_requests",
            "portal_http_request_duration_seconds",
            elapsed,
            portal_http_requests={"view": view, "method": method, "status": status},
            portal_http_request_duration_seconds={"view": view},
        )
        return response


def _method(method: str | None) -> str:
    return method if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} else "other"


def _lag_quantiles(lags: list[float]) -> list[float]:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(lags)
    result = []
    for q in QUANTILES:
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        result.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return result


class StateCollector:
    """The portal's state, read at scrape time. A part that fails is reported in
    ``portal_metrics_collect_errors`` and the rest is still served."""

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "portal_metrics_collect_errors", "1 when a part of the state could not be read.", labels=["part"]
        )
        for part, produce in (
            ("inbox", self._inbox),
            ("sync_lag", self._sync_lag),
            ("connections", self._connections),
            ("queues", self._queues),
            ("exports", self._exports),
            ("worker", self._worker),
        ):
            try:
                yield from produce()
                errors.add_metric([part], 0)
            except Exception as exc:
                logger.warning("metrics: %s not collected: %s", part, type(exc).__name__)
                errors.add_metric([part], 1)
        yield errors

    def _inbox(self) -> Iterator[Metric]:
        from withings.models import Notification

        state = Notification.objects.filter(status=Notification.Status.PENDING).aggregate(
            pending=Count("pk"), oldest=Min("received_at")
        )
        yield GaugeMetricFamily(
            "portal_inbox_pending", "Webhook deliveries stored and not yet processed.", value=state["pending"]
        )
        age = (now() - state["oldest"]).total_seconds() if state["oldest"] else 0.0
        yield GaugeMetricFamily(
            "portal_inbox_oldest_pending_age_seconds",
            "Age of the oldest unprocessed webhook delivery (0 when none).",
            value=max(age, 0.0),
        )

    def _sync_lag(self) -> Iterator[Metric]:
        from withings.models import WithingsConnection

        rows = (
            WithingsConnection.objects.filter(status__in=SYNCING)
            .annotate(since=Coalesce("last_sync_at", "linked_at"))
            .values_list("app_client_id", "since")
        )
        moment = now()
        lags: dict[str, list[float]] = defaultdict(list)
        for app, since in rows.iterator(chunk_size=5000):
            lags[app].append(max((moment - since).total_seconds(), 0.0))
        quantiles = GaugeMetricFamily(
            "portal_sync_lag_seconds",
            "Now minus the last successful sync (or the link, before the first), over the connections "
            "that should sync (active, refresh_failed), by Withings app: quantiles and max.",
            labels=["app", "quantile"],
        )
        count = GaugeMetricFamily(
            "portal_sync_lag_connections", "Connections in portal_sync_lag_seconds, by app.", labels=["app"]
        )
        for app, values in sorted(lags.items()):
            for q, value in zip(QUANTILES, _lag_quantiles(values), strict=True):
                quantiles.add_metric([app, str(q)], value)
            quantiles.add_metric([app, "1"], max(values))
            count.add_metric([app], len(values))
        yield quantiles
        yield count

    def _connections(self) -> Iterator[Metric]:
        from withings.models import WithingsConnection

        family = GaugeMetricFamily(
            "portal_withings_connections", "Withings connections by app and status.", labels=["app", "status"]
        )
        rows = WithingsConnection.objects.values("app_client_id", "status").annotate(n=Count("pk"))
        for row in rows.order_by("app_client_id", "status"):
            family.add_metric([row["app_client_id"], row["status"]], row["n"])
        yield family

    def _queues(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "portal_celery_queue_length",
            "Tasks waiting in each Celery queue (Redis lists).",
            labels=["queue"],
        )
        if settings.REDIS_URL:
            import redis

            from config.celery_app import app

            broker = app.conf.broker_url
            client = redis.Redis.from_url(broker, socket_timeout=2, socket_connect_timeout=2)
            pipe = client.pipeline(transaction=False)
            for queue in settings.WITHINGS_QUEUES:
                for suffix in PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            lengths = pipe.execute()
            step = len(PRIORITY_SUFFIXES)
            for i, queue in enumerate(settings.WITHINGS_QUEUES):
                family.add_metric([queue], sum(lengths[i * step : (i + 1) * step]))
        yield family

    def _exports(self) -> Iterator[Metric]:
        from measurements.models import ExportJob

        family = GaugeMetricFamily("portal_export_jobs", "Export jobs waiting or running.", labels=["status"])
        counts = dict(
            ExportJob.objects.filter(status__in=(ExportJob.Status.PENDING, ExportJob.Status.RUNNING))
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        for status in (ExportJob.Status.PENDING, ExportJob.Status.RUNNING):
            family.add_metric([str(status)], counts.get(status, 0))
        yield family

    def _worker(self) -> Iterator[Metric]:
        from config.health import HEARTBEAT_KEY

        last = cache.get(HEARTBEAT_KEY)
        if last is not None:
            yield GaugeMetricFamily(
                "portal_worker_heartbeat_age_seconds",
                "Seconds since a Celery worker last ran beat's heartbeat task.",
                value=max(time.time() - float(last), 0.0),
            )


class EventCollector:
    def collect(self) -> Iterator[Metric]:
        yield from metrics.collect()


def registry() -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(EventCollector())
    reg.register(StateCollector())
    return reg


def _allowed_address(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.METRICS_ALLOWED_IPS:
        try:
            if client in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOWED_IPS: %r is not an address or network", entry)
    return False


def _refusal(request: HttpRequest) -> HttpResponse | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    token = settings.METRICS_TOKEN
    if header:
        scheme, _, given = header.partition(" ")
        given_bytes = given.strip().encode()
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode()):
            return None
        return HttpResponse("invalid token\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    if _allowed_address(request.META.get("REMOTE_ADDR", "")):
        return None
    if token:
        return HttpResponse("bearer token required\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse("forbidden\n", status=403)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # a slow scrape must not hold a connection for long
            cursor.execute("SET statement_timeout = 5000")
    try:
        body = generate_latest(registry())
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)  # every Prometheus 2.x and 3.x reads it
