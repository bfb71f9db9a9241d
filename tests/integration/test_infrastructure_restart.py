"""With a real Celery worker: the database connections severed (what a PostgreSQL restart or failover
does to them) in the middle of a back-fill, and the broker's queues lost (a Redis restart without
persistence): no chain of work dies for good, every reading arrives exactly once."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from django.db import connection as db

from tests.fixtures.withings import bp_groups_visible, linked_connection
from tests.integration.conftest import wait_for
from tests.integration.test_worker_ingestion import stored_grpids
from withings.models import WithingsConnection
from withings.tasks import backfill_step, resume_backfills

logger = logging.getLogger(__name__)
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def sever_database_connections() -> int:
    """Terminate every other session of the test database, as `pg_ctl restart` does to them."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def history(sandbox, *, days: int, seed: int) -> tuple[WithingsConnection, set[int]]:
    sandbox.state.page_size = 5
    sandbox.state.set_fault("slow", endpoint="measure", delay=0.2)
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - days * 86400, days=days, seed=seed)
    expected = bp_groups_visible(sandbox, uid)
    assert len(expected) > 100
    return connection, expected


def completed(connection) -> bool:
    return WithingsConnection.objects.filter(pk=connection.pk, backfill_completed_at__isnull=False).exists()


def test_a_database_restart_mid_backfill_is_retried_and_the_backfill_completes(
    celery_worker_factory, sandbox
):
    connection, expected = history(sandbox, days=40, seed=21)
    celery_worker_factory()
    backfill_step.delay(connection.pk)
    wait_for(lambda: len(stored_grpids(connection.participant)) >= 15, timeout=60, what="back-fill under way")

    severed, deadline = 0, time.monotonic() + 3
    while time.monotonic() < deadline:  # the database down for 3 s: every session it had is cut
        severed += sever_database_connections()
        time.sleep(0.05)
    assert severed >= 1
    interrupted = len(stored_grpids(connection.participant))
    assert interrupted < len(expected)

    started = time.monotonic()
    wait_for(lambda: completed(connection), timeout=120, what="back-fill completion after the restart")
    recovery = time.monotonic() - started
    grpids = stored_grpids(connection.participant)
    assert len(grpids) == len(set(grpids))
    assert set(grpids) == expected
    logger.warning(
        "%s sessions severed at %s/%s readings; complete %.1f s later",
        severed,
        interrupted,
        len(expected),
        recovery,
    )


def test_a_backfill_whose_queued_step_was_lost_is_resumed_by_the_scanner(
    celery_worker_factory, sandbox, broker_url, settings
):
    """The broker restarted without its data: the queued step is gone. The scanner finds the stalled
    back-fill (its sync lock has expired by then) and re-queues it; exactly one chain goes on."""
    connection, expected = history(sandbox, days=40, seed=22)
    worker = celery_worker_factory()
    backfill_step.delay(connection.pk)
    wait_for(lambda: len(stored_grpids(connection.participant)) >= 15, timeout=60, what="back-fill under way")
    worker.stop()  # warm shutdown: the running step finishes and queues the next one …
    redis.Redis.from_url(broker_url).flushdb()  # … which the broker then loses
    partial = len(stored_grpids(connection.participant))
    assert partial < len(expected)

    celery_worker_factory()
    time.sleep(2)
    assert len(stored_grpids(connection.participant)) == partial  # nothing left to run it
    settings.WITHINGS_BACKFILL_STALL_SECONDS = 1
    assert resume_backfills() == 1
    assert resume_backfills() == 0  # re-queued once per stall period, not every scan
    wait_for(lambda: completed(connection), timeout=120, what="back-fill completion after the resume")
    grpids = stored_grpids(connection.participant)
    assert len(grpids) == len(set(grpids))
    assert set(grpids) == expected
