"""Event metrics (counters and histograms) shared by every process, kept in Redis.

Why Redis and not prometheus_client's multiprocess mode: the web (gunicorn workers) and the Celery
workers run in different containers, and may run on different machines (design: scale out workers
against the same Redis). The multiprocess mode needs one PROMETHEUS_MULTIPROC_DIR shared by every
writer and wiped at each deploy; Redis is already shared by all of them. Each event is one pipelined
round trip (HINCRBY/HINCRBYFLOAT on one hash per metric); ``/metrics`` reads the hashes and renders them
with prometheus_client. Counters survive process restarts (Prometheus' ``rate()`` handles the rare
reset when Redis loses data). Without REDIS_URL (the demo) the values live in this process.

Recording never fails the caller: a Redis error drops the sample and silences recording for a few
seconds (no request waits on a dead Redis more than once per pause). Label values must be bounded
(view names, app ids, outcomes) — never a path, an id of a person or anything secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SEPARATOR = "\x1f"
PAUSE_AFTER_ERROR = 5.0


@dataclass(frozen=True)
class Definition:
    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None  # None: a counter

    @property
    def is_histogram(self) -> bool:
        return self.buckets is not None


DEFINITIONS = {
    d.name: d
    for d in (
        Definition(
            "portal_http_requests", "HTTP requests by view, method and status.", ("view", "method", "status")
        ),
        Definition(
            "portal_http_request_duration_seconds",
            "Time spent in Django per request, by view (the webhook is view withings:notify).",
            ("view",),
            LATENCY_BUCKETS,
        ),
        Definition(
            "portal_withings_calls",
            "Calls sent to Withings by app, endpoint and outcome "
            "(ok, rate_limited = 601/429, transient, terminal, network).",
            ("app", "endpoint", "outcome"),
        ),
        Definition(
            "portal_withings_ratelimit_wait_seconds",
            "Time a caller waited for the shared Withings rate limiter, by app.",
            ("app",),
            WAIT_BUCKETS,
        ),
        Definition(
            "portal_withings_token_refresh_failures",
            "Token refreshes that failed, by app and kind (transient, needs_reauth).",
            ("app", "kind"),
        ),
        Definition("portal_messages", "Messages finished, by channel and status.", ("channel", "status")),
    )
}


class _Store:
    """Where samples go: Redis when configured, else this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client = None
        self._client_url: str | None = None
        self._paused_until = 0.0
        self._local: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    @property
    def prefix(self) -> str:
        return getattr(settings, "METRICS_KEY_PREFIX", "portal:metrics")

    def redis(self):
        url = settings.REDIS_URL
        if not url:
            return None
        if self._client is None or self._client_url != url:
            import redis

            self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._client_url = url
            self._paused_until = 0.0  # the pause was for the other server
        return self._client

    def add(self, increments: list[tuple[str, str, float]]) -> None:
        """``(key, field, amount)`` triples, applied together."""
        client = self.redis()
        if client is None:
            with self._lock:
                for key, field, amount in increments:
                    self._local[key][field] += amount
            return
        if time.monotonic() < self._paused_until:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for key, field, amount in increments:
                pipe.hincrbyfloat(f"{self.prefix}:{key}", field, amount)
            pipe.execute()
        except Exception as exc:  # never fail the caller over a metric
            self._paused_until = time.monotonic() + PAUSE_AFTER_ERROR
            logger.warning("metrics not recorded for %.0f s: %s", PAUSE_AFTER_ERROR, type(exc).__name__)

    def read(self, keys: list[str]) -> list[dict[str, float]]:
        client = self.redis()
        if client is None:
            with self._lock:
                return [dict(self._local.get(key, {})) for key in keys]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(f"{self.prefix}:{key}")
        return [{field.decode(): float(value) for field, value in raw.items()} for raw in pipe.execute()]

    def clear(self) -> None:
        """Forget every sample (tests)."""
        client = self.redis()
        if client is None:
            with self._lock:
                self._local.clear()
            return
        keys = list(client.scan_iter(match=f"{self.prefix}:*", count=500))
        if keys:
            client.delete(*keys)


store = _Store()


def _label_field(definition: Definition, labels: dict[str, str]) -> str:
    if set(labels) != set(definition.labels):
        raise ValueError(f"{definition.name} takes labels {definition.labels}, got {sorted(labels)}")
    return SEPARATOR.join(str(labels[name]) for name in definition.labels)


def _counter_increments(name: str, amount: float, labels: dict[str, str]) -> list[tuple[str, str, float]]:
    return [(name, _label_field(DEFINITIONS[name], labels), amount)]


def _histogram_increments(name: str, value: float, labels: dict[str, str]) -> list[tuple[str, str, float]]:
    """A histogram sample: its bucket (stored non-cumulative), the sum and the count."""
    definition = DEFINITIONS[name]
    assert definition.buckets is not None
    field = _label_field(definition, labels)
    bucket = next((str(b) for b in definition.buckets if value <= b), "+Inf")
    return [(f"{name}:bucket", f"{field}{SEPARATOR}{bucket}", 1), (f"{name}:sum", field, value),
            (f"{name}:count", field, 1)]  # fmt: skip


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    store.add(_counter_increments(name, amount, labels))


def observe(name: str, value: float, **labels: str) -> None:
    store.add(_histogram_increments(name, value, labels))


def count_and_observe(counter: str, histogram: str, value: float, **labels: dict[str, str]) -> None:
    """One counter increment and one histogram sample in a single round trip (the request path).
    ``labels`` maps each metric's name to its labels."""
    store.add(
        _counter_increments(counter, 1.0, labels[counter])
        + _histogram_increments(histogram, value, labels[histogram])
    )


def collect() -> Iterator[Metric]:
    """Every event metric, as prometheus_client metric families."""
    for definition in DEFINITIONS.values():
        labels = list(definition.labels)
        if not definition.is_histogram:
            (values,) = store.read([definition.name])
            family = CounterMetricFamily(definition.name, definition.help, labels=labels)
            for field, value in sorted(values.items()):
                family.add_metric(field.split(SEPARATOR), value)
            yield family
            continue
        assert definition.buckets is not None
        buckets, sums, counts = store.read(
            [f"{definition.name}:{part}" for part in ("bucket", "sum", "count")]
        )
        family_h = HistogramMetricFamily(definition.name, definition.help, labels=labels)
        bounds = [*(str(b) for b in definition.buckets), "+Inf"]
        for field, count in sorted(counts.items()):
            running, cumulative = 0.0, []
            for bound in bounds:
                running += buckets.get(f"{field}{SEPARATOR}{bound}", 0.0)
                cumulative.append((bound, running))
            cumulative[-1] = ("+Inf", count)
            family_h.add_metric(field.split(SEPARATOR), cumulative, sums.get(field, 0.0))
        yield family_h
