"""Celery tasks of the withings app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
import secrets

from celery import shared_task

from .errors import WithingsAuthError, WithingsRateLimited, WithingsTerminalError, WithingsTransientError
from .models import WithingsConnection
from .selectors import connection_ids_due_for_refresh
from .services.tokens import connection_refresh

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
    ids = connection_ids_due_for_refresh()
    for connection_id in ids:
        refresh_connection.delay(connection_id)
    return len(ids)


@shared_task(name="withings.after_link", acks_late=True, ignore_result=True)
def after_link(connection_id: int) -> None:
    """Queued (on commit) after a participant linked their account.

    Placeholder for the ingestion work: subscribe to notifications (appli 4), queue the history
    back-fill from the study start, and getdevice. Must stay idempotent (may run twice).
    """
    logger.info("withings.after_link: connection %s linked", connection_id)
