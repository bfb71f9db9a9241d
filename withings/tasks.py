"""Celery tasks of the withings app: thin wrappers that take ids and call one service.

Every per-connection task is a ``WithingsTask``: one retry policy (``countdown``) and one mapping of
what upstream work can raise to the task's outcome (``for_connection``). The base class below it,
``core.tasking.PortalTask``, retries database and broker connection errors for every task.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from core.tasking import PortalTask, fan_out

from .client import IDENTICAL_CALL_WINDOW
from .errors import (
    WithingsAuthError,
    WithingsError,
    WithingsRateLimited,
    WithingsTerminalError,
    WithingsTransientError,
)
from .models import Notification, WithingsConnection
from .ratelimit import bulk_calls
from .selectors import (
    active_connection_ids,
    connection_ids_due_for_poll,
    connection_ids_due_for_refresh,
    connection_is_usable,
    pending_notification_ids,
)
from .services.devices import connection_refresh_devices
from .services.notifications import (
    notification_handle_user_event,
    notification_mark,
    notification_start_attempt,
)
from .services.subscriptions import (
    APPLI_USER_EVENTS,
    connection_check_subscriptions,
    connection_subscribe,
)
from .services.sync import (
    SyncBusy,
    SyncStopped,
    SyncTooSoon,
    connection_backfill_step,
    connection_backfills_to_resume,
    connection_record_error,
    connection_sync,
)
from .services.tokens import connection_refresh
from .services.withdrawal import participant_withdraw_withings

logger = logging.getLogger(__name__)

#: Faults worth trying again later: upstream trouble, another worker holding the connection's lock,
#: a notification sync held back to coalesce with the previous one.
RETRYABLE = (WithingsTransientError, SyncBusy, SyncTooSoon)


def transient_countdown(retries: int) -> int:
    """Backoff 5·2^n s (at most 300) with full jitter, but never sooner than the identical-call
    window: a retry repeats the very call that failed, and would only be refused within it."""
    return IDENTICAL_CALL_WINDOW + secrets.randbelow(min(300, 5 * 2**retries) + 1)


class WithingsTask(PortalTask):
    """A task doing upstream work for one connection (or participant).

    - ``countdown(exc)``: a 601 (or a coalesced notification) waits what it was told, plus jitter;
      another worker's lock, backoff 5·2^n s with full jitter; any other transient fault at least
      Withings' 10 s identical-call window.
    - ``for_connection(...)``: a vanished connection, an unusable link, a refused grant or a terminal
      error end the task with an outcome (recorded on the connection and, for a notification, on the
      inbox row); retryable faults retry, a bounded number of times (``max_retries``).
    """

    acks_late = True
    ignore_result = True
    max_retries = 8

    def countdown(self, exc: BaseException) -> float:
        retries = self.request.retries or 0
        if isinstance(exc, WithingsRateLimited | SyncTooSoon):
            return exc.wait_seconds + secrets.randbelow(5)
        if isinstance(exc, SyncBusy):
            return 1 + secrets.randbelow(min(300, 5 * 2**retries))
        return transient_countdown(retries)

    def retry_later(self, exc: BaseException):
        return self.retry(exc=exc, countdown=self.countdown(exc))

    def for_connection(
        self,
        connection_id: int,
        work: Callable[[], Any],
        *,
        notification_id: int | None = None,
        auth_outcome: str = "failed",
        record_errors: bool = True,
    ) -> Any:
        try:
            return work()
        except WithingsConnection.DoesNotExist:
            logger.info("%s: connection %s is gone", self.name, connection_id)
            return "missing"
        except SyncStopped:
            if notification_id:
                notification_mark(notification_id, Notification.Status.FAILED, "connection not usable")
            return "stopped"
        except (WithingsAuthError, WithingsTerminalError) as exc:
            if record_errors:
                connection_record_error(connection_id=connection_id, what=self.short_name, exc=exc)
            if notification_id:
                notification_mark(notification_id, Notification.Status.FAILED, exc.short)
            return auth_outcome if isinstance(exc, WithingsAuthError) else "failed"
        except RETRYABLE as exc:
            if record_errors and isinstance(exc, WithingsTransientError):
                connection_record_error(connection_id=connection_id, what=self.short_name, exc=exc)
            if notification_id and self.request.retries >= self.max_retries:
                notification_mark(
                    notification_id, Notification.Status.FAILED, getattr(exc, "short", str(exc))
                )
            raise self.retry_later(exc) from exc

    @property
    def short_name(self) -> str:
        """How ``last_error`` names the work that failed."""
        name = self.name.rsplit(".", 1)[-1]
        return "sync" if name in SYNC_TASKS else name


SYNC_TASKS = frozenset({"process_notification", "sync_connection", "poll_connection", "backfill_step"})


def withings_task(name: str, **options):
    return shared_task(name=name, base=WithingsTask, bind=True, **options)


def background_calls():
    """Bulk rate-limit priority for work nobody is waiting for (`ratelimit.bulk_calls`) — except when
    tasks run in-process (the zero-setup demo): there a task runs inside the web request of the
    participant who just linked, who should not wait for the pace of background work."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return contextlib.nullcontext()
    return bulk_calls()


# -- tokens --------------------------------------------------------------------------------

REFRESH_MAX_RETRIES = 5


@withings_task("withings.refresh_connection", max_retries=REFRESH_MAX_RETRIES)
def refresh_connection(self, connection_id: int) -> str:
    """Refresh one connection if it is (still) due. A refused grant is recorded as needs_reauth by
    the service and not retried; the refresh counts its own failures on the connection."""
    outcome = self.for_connection(
        connection_id,
        lambda: connection_refresh(connection_id=connection_id),
        auth_outcome="needs_reauth",
        record_errors=False,
    )
    return getattr(outcome, "value", outcome)


@shared_task(name="withings.refresh_due_connections", acks_late=False, ignore_result=True)
def refresh_due_connections() -> int:
    """Beat: queue one refresh per connection past half its access-token life."""
    return fan_out(refresh_connection, connection_ids_due_for_refresh())


# -- ingestion -----------------------------------------------------------------------------


@withings_task("withings.process_notification")
def process_notification(self, notification_id: int) -> str:
    """Fetch what a notification announced (re-fetching through the API, never trusting it)."""
    notification = notification_start_attempt(notification_id=notification_id)
    if notification is None:
        return "done"  # coalesced: an earlier sync of this connection already covered it
    if notification.appli == APPLI_USER_EVENTS:
        notification_handle_user_event(notification_id=notification_id)
        return "user_event"
    return _sync(self, notification.connection_id, notification_id=notification_id, coalesce=True)


@withings_task("withings.sync_connection")
def sync_connection(self, connection_id: int) -> str:
    return _sync(self, connection_id)


@withings_task("withings.poll_connection")
def poll_connection(self, connection_id: int) -> str:
    """The safety-net poll (same sync, on the low-priority queue, with bulk rate-limit priority)."""
    with background_calls():
        return _sync(self, connection_id)


def _sync(
    task: WithingsTask, connection_id: int, *, notification_id: int | None = None, coalesce=False
) -> str:
    result = task.for_connection(
        connection_id,
        lambda: connection_sync(connection_id=connection_id, coalesce=coalesce),
        notification_id=notification_id,
    )
    if isinstance(result, str):
        return result
    if result.more:
        transaction.on_commit(lambda: backfill_step.delay(connection_id, result.chain))
    return "synced"


@withings_task("withings.backfill_step")
def backfill_step(self, connection_id: int, chain: int | None = None) -> str:
    """One page of history, then back to the tail of the queue: fair across participants.

    Its upstream calls are bulk: they use every idle slot of the rate budget but never the burst
    that lets a notification's call go first. ``chain``: a step of a chain the scanner has replaced
    (it re-queued the back-fill as stalled) does nothing."""
    with background_calls():
        result = self.for_connection(
            connection_id,
            lambda: connection_backfill_step(connection_id=connection_id, chain=chain),
        )
    if isinstance(result, str):
        return result
    if result.superseded:
        return "superseded"
    if result.more:
        backfill_step.delay(connection_id, result.chain)
        return "more"
    return "complete"


@shared_task(name="withings.resume_backfills", acks_late=False, ignore_result=True)
def resume_backfills() -> int:
    """Beat: re-queue every open back-fill without progress for WITHINGS_BACKFILL_STALL_SECONDS (its
    chain died: a worker killed, a database restart outlasting the retries, a lost broker message).
    The stall time exceeds the sync lock's TTL, so a dead task's lock has expired by then."""
    stalled = connection_backfills_to_resume()
    for connection_id, step in stalled:
        backfill_step.delay(connection_id, step)
    return len(stalled)


@withings_task("withings.after_link", max_retries=5)
def after_link(self, connection_id: int) -> None:
    """After linking: subscribe to notifications, fetch the first page of history, queue the rest of
    the back-fill, read the devices.

    The first page is fetched here, with interactive priority, rather than queued: queued, it would
    wait behind every other participant's back-fill (a whole cohort linking means thousands of
    steps), and until it runs the connection has no watermark, so the participant's new readings
    could not arrive by notification either. Idempotent (subscribe replaces, the back-fill resumes
    from its cursor, devices upsert)."""
    if not connection_is_usable(connection_id=connection_id):
        return
    try:
        connection_subscribe(connection_id=connection_id)
    except WithingsTerminalError as exc:
        logger.warning("withings.after_link: subscribe failed for %s: %s", connection_id, exc.short)
    except WithingsTransientError as exc:
        raise self.retry_later(exc) from exc
    more, chain = _first_backfill_page(connection_id)
    if more:
        backfill_step.delay(connection_id, chain)
    refresh_devices.delay(connection_id)


def _first_backfill_page(connection_id: int) -> tuple[bool, int | None]:
    """The back-fill's first page now; (True, chain) when more is to come (or when the queued task
    should deal with what went wrong: it retries, records errors and stops on a broken link)."""
    try:
        result = connection_backfill_step(connection_id=connection_id)
    except (SyncBusy, SyncStopped, WithingsError, WithingsConnection.DoesNotExist) as exc:
        logger.info("withings.after_link: first page for %s left to the queue: %s", connection_id, exc)
        return True, None
    return result.more, result.chain


@withings_task("withings.refresh_devices", max_retries=5)
def refresh_devices(self, connection_id: int) -> int:
    with background_calls():
        outcome = self.for_connection(
            connection_id,
            lambda: connection_refresh_devices(connection_id=connection_id),
            record_errors=False,
        )
    return outcome if isinstance(outcome, int) else 0


@shared_task(name="withings.refresh_all_devices", acks_late=False, ignore_result=True)
def refresh_all_devices() -> int:
    return fan_out(refresh_devices, list(active_connection_ids()))


@shared_task(name="withings.poll_all", acks_late=False, ignore_result=True)
def poll_all() -> int:
    """Beat: the safety net — sync connections not synced for WITHINGS_POLL_HOURS."""
    return fan_out(poll_connection, connection_ids_due_for_poll())


@shared_task(name="withings.sweep_notifications", acks_late=False, ignore_result=True)
def sweep_notifications() -> int:
    """Beat: re-queue inbox rows still pending (a lost broker message never loses a delivery)."""
    return fan_out(process_notification, pending_notification_ids())


@shared_task(name="withings.check_subscriptions", acks_late=False, ignore_result=True)
def check_subscriptions() -> int:
    return fan_out(check_connection_subscriptions, list(active_connection_ids()))


@withings_task("withings.check_connection_subscriptions", max_retries=5)
def check_connection_subscriptions(self, connection_id: int) -> str:
    with background_calls():
        check = self.for_connection(
            connection_id,
            lambda: connection_check_subscriptions(connection_id=connection_id, repair=True),
            record_errors=False,
        )
    if isinstance(check, str):
        return check
    return "repaired" if check.repaired else "ok"


WITHDRAW_MAX_RETRIES = 5


@withings_task("withings.withdraw_participant", max_retries=WITHDRAW_MAX_RETRIES)
def withdraw_participant(self, participant_id: int) -> str:
    """Unsubscribe, revoke the grant, wipe the tokens; transient faults retry, then wipe anyway."""
    final = self.request.retries >= WITHDRAW_MAX_RETRIES
    try:
        return participant_withdraw_withings(participant_id=participant_id, final_attempt=final)
    except WithingsTransientError as exc:
        raise self.retry_later(exc) from exc
