"""Celery tasks of the withings app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import contextlib
import logging
import secrets

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.timezone import now

from cohorts.tasking import fan_out

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
    REFRESHABLE,
    active_connection_ids,
    connection_ids_due_for_poll,
    connection_ids_due_for_refresh,
    pending_notification_ids,
)
from .services.devices import connection_refresh_devices
from .services.notifications import notification_handle_user_event, notification_mark
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
    connection_sync,
)
from .services.tokens import connection_refresh
from .services.withdrawal import participant_withdraw_withings

logger = logging.getLogger(__name__)

REFRESH_MAX_RETRIES = 5


@shared_task(
    name="withings.refresh_connection",
    bind=True,
    autoretry_for=(WithingsTransientError,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=REFRESH_MAX_RETRIES,
    acks_late=True,
    ignore_result=True,
)
def refresh_connection(self, connection_id: int) -> str:
    """Refresh one connection if it is (still) due. Transient errors retry with backoff (a 601's
    ``wait_seconds`` is honoured); auth errors are recorded as needs_reauth and not retried."""
    try:
        return connection_refresh(connection_id=connection_id).value
    except WithingsConnection.DoesNotExist:
        logger.info("withings.refresh_connection: connection %s is gone", connection_id)
        return "missing"
    except WithingsRateLimited as exc:
        countdown = exc.wait_seconds + secrets.randbelow(5)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except WithingsAuthError:
        return "needs_reauth"
    except WithingsTerminalError:
        return "failed"


@shared_task(name="withings.refresh_due_connections", acks_late=False, ignore_result=True)
def refresh_due_connections() -> int:
    """Beat: queue one refresh per connection past half its access-token life."""
    return fan_out(refresh_connection, connection_ids_due_for_refresh())


# -- ingestion -----------------------------------------------------------------------------


def background_calls():
    """Bulk rate-limit priority for work nobody is waiting for (`ratelimit.bulk_calls`) — except when
    tasks run in-process (the zero-setup demo): there a task runs inside the web request of the
    participant who just linked, who should not wait for the pace of background work."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return contextlib.nullcontext()
    return bulk_calls()


#: Per-connection tasks: transient upstream errors are retried (`_retry_upstream`) a bounded number of times.
TRANSIENT_RETRY = {
    "bind": True,
    "acks_late": True,
    "ignore_result": True,
    "max_retries": 5,
}


TRANSIENT = (WithingsTransientError, SyncBusy)
SYNC_RETRY = {
    "bind": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
    "ignore_result": True,
}


def _retry_after_601(task, exc: WithingsRateLimited):
    return task.retry(exc=exc, countdown=exc.wait_seconds + secrets.randbelow(5))


def transient_countdown(retries: int) -> int:
    """Backoff 5·2^n s (at most 300) with full jitter, but never sooner than the identical-call
    window: a retry repeats the very call that failed, and Celery's own jitter could send it again
    within a second, only to be refused."""
    return IDENTICAL_CALL_WINDOW + secrets.randbelow(min(300, 5 * 2**retries) + 1)


def _retry_transient(task, exc: WithingsTransientError):
    return task.retry(exc=exc, countdown=transient_countdown(task.request.retries))


def _retry_upstream(task, exc: WithingsTransientError):
    """A 601 waits what Withings said; any other transient fault at least the identical-call window."""
    if isinstance(exc, WithingsRateLimited):
        return _retry_after_601(task, exc)
    return _retry_transient(task, exc)


def _record_sync_error(connection_id: int, exc: Exception) -> None:
    short = getattr(exc, "short", type(exc).__name__)
    WithingsConnection.objects.filter(pk=connection_id).update(
        last_error=f"sync: {short}"[:255], last_error_at=now()
    )


@shared_task(name="withings.process_notification", **SYNC_RETRY)
def process_notification(self, notification_id: int) -> str:
    """Fetch what a notification announced (re-fetching through the API, never trusting it)."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None or notification.status != Notification.Status.PENDING:
        return "done"  # coalesced: an earlier sync of this connection already covered it
    Notification.objects.filter(pk=notification_id).update(attempts=F("attempts") + 1)
    if notification.appli == APPLI_USER_EVENTS:
        notification_handle_user_event(notification_id=notification_id)
        return "user_event"
    return _sync_task(self, notification.connection_id, notification_id=notification_id, coalesce=True)


@shared_task(name="withings.sync_connection", **SYNC_RETRY)
def sync_connection(self, connection_id: int) -> str:
    return _sync_task(self, connection_id)


@shared_task(name="withings.poll_connection", **SYNC_RETRY)
def poll_connection(self, connection_id: int) -> str:
    """The safety-net poll (same sync, on the low-priority queue, with bulk rate-limit priority)."""
    with background_calls():
        return _sync_task(self, connection_id)


def _sync_task(
    task, connection_id: int, *, notification_id: int | None = None, coalesce: bool = False
) -> str:
    try:
        result = connection_sync(connection_id=connection_id, coalesce=coalesce)
    except WithingsConnection.DoesNotExist:
        return "missing"
    except SyncTooSoon as exc:
        raise task.retry(exc=exc, countdown=exc.wait_seconds + secrets.randbelow(3)) from exc
    except SyncStopped:
        if notification_id:
            notification_mark(notification_id, Notification.Status.FAILED, "connection not usable")
        return "stopped"
    except WithingsRateLimited as exc:
        raise _retry_after_601(task, exc) from exc
    except (WithingsAuthError, WithingsTerminalError) as exc:
        _record_sync_error(connection_id, exc)
        if notification_id:
            notification_mark(notification_id, Notification.Status.FAILED, exc.short)
        return "failed"
    except WithingsTransientError as exc:
        _record_sync_error(connection_id, exc)
        if notification_id and task.request.retries >= task.max_retries:
            notification_mark(notification_id, Notification.Status.FAILED, exc.short)
        raise _retry_transient(task, exc) from exc
    if result.more:
        transaction.on_commit(lambda: backfill_step.delay(connection_id, result.step))
    return "synced"


@shared_task(name="withings.backfill_step", **SYNC_RETRY)
def backfill_step(self, connection_id: int, expected_step: int | None = None) -> str:
    """One page of history, then back to the tail of the queue: fair across participants.

    Its upstream calls are bulk: they use every idle slot of the rate budget but never the burst
    that lets a notification's call go first. ``expected_step`` (the back-fill's step count when
    this step was queued) ends a chain that another one has overtaken."""
    try:
        with background_calls():
            result = connection_backfill_step(connection_id=connection_id, expected_step=expected_step)
    except WithingsConnection.DoesNotExist:
        return "missing"
    except SyncStopped:
        return "stopped"
    except WithingsRateLimited as exc:
        raise _retry_after_601(self, exc) from exc
    except (WithingsAuthError, WithingsTerminalError) as exc:
        _record_sync_error(connection_id, exc)
        return "failed"
    except WithingsTransientError as exc:
        raise _retry_transient(self, exc) from exc
    if result.superseded:
        return "superseded"
    if result.more:
        backfill_step.delay(connection_id, result.step)
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


@shared_task(name="withings.after_link", **TRANSIENT_RETRY)
def after_link(self, connection_id: int) -> None:
    """After linking: subscribe to notifications, fetch the first page of history, queue the rest of
    the back-fill, read the devices.

    The first page is fetched here, with interactive priority, rather than queued: queued, it would
    wait behind every other participant's back-fill (a whole cohort linking means thousands of
    steps), and until it runs the connection has no watermark, so the participant's new readings
    could not arrive by notification either. Idempotent (subscribe replaces, the back-fill resumes
    from its cursor, devices upsert)."""
    if not WithingsConnection.objects.filter(pk=connection_id, status__in=REFRESHABLE).exists():
        return
    try:
        connection_subscribe(connection_id=connection_id)
    except WithingsTerminalError as exc:
        logger.warning("withings.after_link: subscribe failed for %s: %s", connection_id, exc.short)
    except WithingsTransientError as exc:
        raise _retry_upstream(self, exc) from exc
    more, step = _first_backfill_page(connection_id)
    if more:
        backfill_step.delay(connection_id, step)
    refresh_devices.delay(connection_id)


def _first_backfill_page(connection_id: int) -> tuple[bool, int | None]:
    """The back-fill's first page now; (True, step) when more is to come (or when the queued task
    should deal with what went wrong: it retries, records errors and stops on a broken link)."""
    try:
        result = connection_backfill_step(connection_id=connection_id)
    except (SyncBusy, SyncStopped, WithingsError, WithingsConnection.DoesNotExist) as exc:
        logger.info("withings.after_link: first page for %s left to the queue: %s", connection_id, exc)
        return True, None
    return result.more, result.step


@shared_task(name="withings.refresh_devices", **TRANSIENT_RETRY)
def refresh_devices(self, connection_id: int) -> int:
    try:
        with background_calls():
            return connection_refresh_devices(connection_id=connection_id)
    except (WithingsAuthError, WithingsTerminalError, WithingsConnection.DoesNotExist):
        return 0
    except WithingsTransientError as exc:
        raise _retry_upstream(self, exc) from exc


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


@shared_task(name="withings.check_connection_subscriptions", **TRANSIENT_RETRY)
def check_connection_subscriptions(self, connection_id: int) -> str:
    try:
        with background_calls():
            check = connection_check_subscriptions(connection_id=connection_id, repair=True)
    except (WithingsAuthError, WithingsTerminalError, WithingsConnection.DoesNotExist):
        return "failed"
    except WithingsTransientError as exc:
        raise _retry_upstream(self, exc) from exc
    return "repaired" if check.repaired else "ok"


WITHDRAW_MAX_RETRIES = 5


@shared_task(
    name="withings.withdraw_participant",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=WITHDRAW_MAX_RETRIES,
)
def withdraw_participant(self, participant_id: int) -> str:
    """Unsubscribe, revoke the grant, wipe the tokens; transient faults retry, then wipe anyway."""
    final = self.request.retries >= WITHDRAW_MAX_RETRIES
    try:
        return participant_withdraw_withings(participant_id=participant_id, final_attempt=final)
    except WithingsTransientError as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
