"""20 threads refresh the same connection against PostgreSQL and the sandbox, round after round
(5 rounds, and 100 behind the `slow` marker): exactly one upstream refresh each time, the newest
refresh token stored, never a lockout."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils.timezone import now

from tests.fixtures.withings import linked_connection
from withings.models import WithingsConnection
from withings.services.api import ConnectionApi
from withings.services.tokens import RefreshOutcome, connection_refresh

THREADS = 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rounds", [5, pytest.param(100, marks=pytest.mark.slow)])
def test_concurrent_refresh_is_serialised(sandbox, rounds):
    conn = linked_connection(sandbox)
    userid = conn.withings_userid
    barrier = threading.Barrier(THREADS)

    def refresh() -> RefreshOutcome:
        barrier.wait(timeout=30)
        return connection_refresh(connection_id=conn.pk)

    def close_db() -> None:
        barrier.wait(timeout=30)
        connections.close_all()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        try:
            for round_no in range(rounds):
                WithingsConnection.objects.filter(pk=conn.pk).update(
                    refresh_due_at=now() - dt.timedelta(seconds=1)
                )
                outcomes = [f.result() for f in [pool.submit(refresh) for _ in range(THREADS)]]

                assert outcomes.count(RefreshOutcome.REFRESHED) == 1, round_no
                assert outcomes.count(RefreshOutcome.SKIPPED) == THREADS - 1, round_no
                assert sandbox.state.stats["refreshes"] == round_no + 1
                conn.refresh_from_db()
                assert conn.status == WithingsConnection.Status.ACTIVE
                # The connection works: a data call with the stored access token succeeds, which
                # kills the previous refresh token upstream; the stored one is then the only one left.
                body = ConnectionApi.for_connection(conn).post(
                    "/measure", {"action": "getmeas", "meastypes": "9,10,11", "category": 1}
                )
                assert body["measuregrps"] == []
                assert sandbox.state.valid_refresh_tokens(userid, sandbox.client_id) == [conn.refresh_token]
        finally:
            barrier.reset()
            list(pool.map(lambda _: close_db(), range(THREADS)))

    stats = sandbox.state.stats
    assert stats["refreshes"] == rounds
    assert stats.get("refresh_rejected", 0) == 0
    assert stats.get("status.401", 0) == 0
    assert stats.get("status.503", 0) == 0
