"""Celery plumbing shared by the apps' tasks modules: the base task class and beat fan-out.

Every task of ours is a ``PortalTask`` (``config.celery_app`` makes it the app's task class):

- **Transient infrastructure errors** — the database connection lost or refused, Redis unreachable,
  the broker refusing a publish — are retried with bounded, jittered backoff in every task, apart
  from the upstream (Withings) errors each task handles itself. The dead database connection is
  discarded first, so the retry opens a new one instead of reusing it. Programming errors are not
  retried. When the retries run out, the work is not lost: its state lives in PostgreSQL and a
  beat scanner resumes it (back-fills, inbox rows, export jobs).
- **In-process mode** (no ``REDIS_URL``: tasks run eagerly inside the caller, e.g. the request of
  the participant who is linking): a retry must neither escape into the caller as an exception nor
  run again at once (Withings refuses an identical call within 10 s). It is handed to the embedded
  runner (``config.embedded``) to run after its countdown; without one it is logged and left to the
  scanners, which find the unfinished work in the database.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable

from celery import Task
from celery.exceptions import Ignore
from django.db import InterfaceError, connections
from django.db import OperationalError as DatabaseOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseOperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerOperationalError,
)
#: Retries of an infrastructure error: 2, 4, 8 … 60 s (+ jitter) — about ten minutes in all, longer
#: than a database restart, a failover or a container restart takes.
INFRASTRUCTURE_MAX_RETRIES = 14
INFRASTRUCTURE_BACKOFF_MAX = 60

#: Receives (signature, countdown) for a retry asked for while running in-process; set by the
#: embedded runner when it starts.
_eager_deferrer: Callable[[object, float], None] | None = None


def set_eager_deferrer(deferrer: Callable[[object, float], None] | None) -> None:
    global _eager_deferrer
    _eager_deferrer = deferrer


def infrastructure_countdown(retries: int) -> int:
    return min(INFRASTRUCTURE_BACKOFF_MAX, 2 ** (retries + 1)) + secrets.randbelow(3)


def discard_broken_connections() -> None:
    """Close every database connection that failed (or outlived CONN_MAX_AGE): never reuse a dead one."""
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


class PortalTask(Task):
    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except INFRASTRUCTURE_ERRORS as exc:
            discard_broken_connections()
            logger.warning(
                "task %s[%s]: %s, retry %s",
                self.name,
                self.request.id,
                type(exc).__name__,
                self.request.retries + 1,
            )
            raise self.retry(
                exc=exc,
                countdown=infrastructure_countdown(self.request.retries),
                max_retries=max(self.max_retries or 0, INFRASTRUCTURE_MAX_RETRIES),
            ) from exc

    def retry(
        self,
        args=None,
        kwargs=None,
        exc=None,
        throw=True,
        eta=None,
        countdown=None,
        max_retries=None,
        **options,
    ):
        request = self.request
        if not (request.is_eager and self.app.conf.task_eager_propagates):
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        retries = request.retries + 1
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and retries > limit:
            if exc is not None:
                raise exc
            raise self.MaxRetriesExceededError(f"Can't retry {self.name}[{request.id}]")
        signature = self.signature_from_request(
            request, args, kwargs, countdown=countdown, eta=eta, retries=retries, **options
        )
        reason = type(exc).__name__ if exc is not None else "retry"
        if _eager_deferrer is None:
            logger.warning("task %s (in-process): %s; left to the scanners", self.name, reason)
        else:
            logger.info("task %s (in-process): %s; runs again in %ss", self.name, reason, countdown or 0)
            _eager_deferrer(signature, float(countdown or 0))
        raise Ignore()


def fan_out(task, ids: Iterable[int]) -> int:
    """Beat scanners: queue one task per id (each task takes an id and is idempotent)."""
    ids = list(ids)
    for item in ids:
        task.delay(item)
    return len(ids)
