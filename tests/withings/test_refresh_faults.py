"""Each sandbox fault maps to the right connection state and retry behaviour."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant
from tests.fixtures.withings import linked_connection, spy_countdowns
from withings.errors import (
    ConnectionNotUsable,
    WithingsAuthError,
    WithingsRateLimited,
    WithingsRefreshTokenInvalid,
    WithingsTransientError,
)
from withings.models import WithingsConnection
from withings.ratelimit import get_limiter
from withings.services.api import ConnectionApi
from withings.services.tokens import RefreshOutcome, connection_refresh
from withings.tasks import REFRESH_MAX_RETRIES, refresh_connection, refresh_due_connections

pytestmark = pytest.mark.django_db
Status = WithingsConnection.Status
GETMEAS = {"action": "getmeas", "meastypes": "9,10,11", "category": 1}


def due(conn: WithingsConnection) -> WithingsConnection:
    WithingsConnection.objects.filter(pk=conn.pk).update(refresh_due_at=now() - dt.timedelta(minutes=1))
    conn.refresh_from_db()
    return conn


def link_status(conn) -> str:
    return Participant.objects.get(pk=conn.participant_id).link_status


def test_refresh_stores_the_new_pair(sandbox):
    conn = due(linked_connection(sandbox))
    old_refresh = conn.refresh_token

    assert connection_refresh(connection_id=conn.pk) == RefreshOutcome.REFRESHED

    conn.refresh_from_db()
    assert conn.refresh_token != old_refresh
    assert conn.refresh_token in sandbox.state.valid_refresh_tokens(conn.withings_userid)
    assert conn.access_token in sandbox.state.valid_access_tokens(conn.withings_userid)
    assert conn.refresh_due_at > now() + dt.timedelta(minutes=89)
    assert conn.last_refresh_at is not None
    assert connection_refresh(connection_id=conn.pk) == RefreshOutcome.SKIPPED
    assert sandbox.state.stats["refreshes"] == 1


@pytest.mark.parametrize(
    ("kind", "options", "exc_type"),
    [
        ("522", {}, WithingsTransientError),
        ("http5xx", {"http_status": 502}, WithingsTransientError),
        ("601", {"wait_seconds": 7}, WithingsRateLimited),
        ("timeout", {"delay": 1.0}, WithingsTransientError),
    ],
)
def test_transient_faults_on_refresh_keep_the_tokens(sandbox, settings, kind, options, exc_type):
    settings.WITHINGS_HTTP_TIMEOUT = 0.3
    conn = due(linked_connection(sandbox))
    tokens = (conn.access_token, conn.refresh_token)
    sandbox.state.set_fault(kind, endpoint="oauth2", **options)

    with pytest.raises(exc_type) as raised:
        connection_refresh(connection_id=conn.pk)

    conn.refresh_from_db()
    assert (conn.access_token, conn.refresh_token) == tokens
    assert conn.status == Status.REFRESH_FAILED
    assert conn.refresh_failures == 1
    assert conn.last_error == raised.value.short
    assert link_status(conn) == Participant.LinkStatus.REFRESH_FAILED
    assert sandbox.state.stats.get("refreshes", 0) == 0
    if kind == "601":
        assert raised.value.wait_seconds == 7
        wait, _now = get_limiter().try_acquire(sandbox.client_id)
        assert 6 < wait <= 7  # shared pause for this app
    # Once the fault is gone, the next attempt succeeds and the link is active again.
    sandbox.state.clear_faults()
    get_limiter().reset(sandbox.client_id)
    assert connection_refresh(connection_id=conn.pk) == RefreshOutcome.REFRESHED
    conn.refresh_from_db()
    assert (conn.status, conn.refresh_failures, conn.last_error) == (Status.ACTIVE, 0, "")
    assert link_status(conn) == Participant.LinkStatus.ACTIVE


def test_slow_answer_within_the_timeout_succeeds(sandbox, settings):
    settings.WITHINGS_HTTP_TIMEOUT = 2
    conn = due(linked_connection(sandbox))
    sandbox.state.set_fault("slow", endpoint="oauth2", delay=0.2)
    assert connection_refresh(connection_id=conn.pk) == RefreshOutcome.REFRESHED


def test_dead_refresh_token_means_needs_reauth_and_keeps_the_token(sandbox, caplog):
    conn = due(linked_connection(sandbox))
    tokens = (conn.access_token, conn.refresh_token)
    sandbox.state.revoke_user(conn.withings_userid, sandbox.client_id)

    with caplog.at_level(logging.DEBUG), pytest.raises(WithingsRefreshTokenInvalid):
        connection_refresh(connection_id=conn.pk)

    conn.refresh_from_db()
    assert (conn.access_token, conn.refresh_token) == tokens
    assert conn.status == Status.NEEDS_REAUTH
    assert (
        conn.last_error == "v2/oauth2 requesttoken refresh: status 503: Invalid Params: invalid refresh_token"
    )
    assert link_status(conn) == Participant.LinkStatus.NEEDS_REAUTH
    event = AuditEvent.objects.get(participant_id=conn.participant_id, action="participant.link_status")
    assert event.detail["to"] == "needs_reauth"
    # Never a token or secret in logs, errors or audit.
    for secret in (*tokens, sandbox.client_secret):
        assert secret not in caplog.text
        assert secret not in conn.last_error
        assert secret not in str(event.detail)
    assert connection_refresh(connection_id=conn.pk) == RefreshOutcome.INACTIVE
    with pytest.raises(ConnectionNotUsable):
        ConnectionApi.for_connection(conn).post("/measure", GETMEAS)


def test_401_on_data_call_refreshes_once_and_retries(sandbox):
    conn = linked_connection(sandbox)
    sandbox.state.set_fault("401", endpoint="measure", count=1)

    body = ConnectionApi.for_connection(conn).post("/measure", GETMEAS)

    assert body["measuregrps"] == []
    assert sandbox.state.stats["refreshes"] == 1
    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE
    assert sandbox.state.valid_refresh_tokens(conn.withings_userid) == [conn.refresh_token]


def test_persistent_401_means_needs_reauth_after_one_refresh(sandbox):
    conn = linked_connection(sandbox)
    sandbox.state.set_fault("401", endpoint="measure")

    with pytest.raises(WithingsAuthError):
        ConnectionApi.for_connection(conn).post("/measure", GETMEAS)

    assert sandbox.state.stats["refreshes"] == 1
    assert sandbox.state.stats["measure.getmeas"] == 2
    conn.refresh_from_db()
    assert conn.status == Status.NEEDS_REAUTH
    assert link_status(conn) == Participant.LinkStatus.NEEDS_REAUTH


def test_expired_access_token_is_refreshed_before_the_call(sandbox):
    conn = linked_connection(sandbox)
    WithingsConnection.objects.filter(pk=conn.pk).update(access_expires_at=now() - dt.timedelta(seconds=1))
    conn.refresh_from_db()
    ConnectionApi.for_connection(conn).post("/measure", GETMEAS)
    assert sandbox.state.stats["refreshes"] == 1
    assert sandbox.state.stats.get("status.401", 0) == 0


@pytest.fixture
def eager_retries(monkeypatch):
    """Eager mode runs retries at once (no countdown) when exceptions are not propagated."""
    from config.celery_app import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


def test_task_retries_transient_errors_then_succeeds(sandbox, eager_retries):
    conn = due(linked_connection(sandbox))
    sandbox.state.set_fault("522", endpoint="oauth2", count=2)

    result = refresh_connection.apply(args=[conn.pk])

    assert (result.state, result.get()) == ("SUCCESS", "refreshed")
    assert sandbox.state.stats["status.522"] == 2
    assert sandbox.state.stats["refreshes"] == 1
    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE


def test_task_gives_up_after_bounded_retries(sandbox, eager_retries):
    conn = due(linked_connection(sandbox))
    sandbox.state.set_fault("http5xx", endpoint="oauth2")

    result = refresh_connection.apply(args=[conn.pk])

    assert result.state == "FAILURE"
    assert isinstance(result.result, WithingsTransientError)
    assert sandbox.state.stats["oauth2.requesttoken"] == REFRESH_MAX_RETRIES + 1
    conn.refresh_from_db()
    assert conn.status == Status.REFRESH_FAILED
    assert conn.refresh_failures == REFRESH_MAX_RETRIES + 1


def test_task_does_not_retry_a_dead_refresh_token(sandbox, eager_retries):
    conn = due(linked_connection(sandbox))
    sandbox.state.revoke_user(conn.withings_userid, sandbox.client_id)

    assert refresh_connection.apply(args=[conn.pk]).get() == "needs_reauth"

    assert sandbox.state.stats["refresh_rejected"] == 1
    conn.refresh_from_db()
    assert conn.status == Status.NEEDS_REAUTH


def test_task_drops_a_missing_connection(sandbox):
    assert refresh_connection.apply(args=[999_999]).get() == "missing"


def test_task_honours_wait_seconds_of_a_601(sandbox, eager_retries, monkeypatch):
    conn = due(linked_connection(sandbox))
    sandbox.state.set_fault("601", endpoint="oauth2", count=1, wait_seconds=1)
    countdowns = spy_countdowns(monkeypatch, refresh_connection)

    assert refresh_connection.apply(args=[conn.pk]).get() == "refreshed"
    assert len(countdowns) == 1
    assert 1 <= countdowns[0] < 6


def test_beat_queues_only_connections_past_half_life(sandbox):
    due_conn = due(linked_connection(sandbox))
    fresh = linked_connection(sandbox)
    broken = due(linked_connection(sandbox, status=Status.NEEDS_REAUTH))
    before = {c.pk: c.refresh_token for c in (due_conn, fresh, broken)}

    assert refresh_due_connections.apply().get() == 1

    assert sandbox.state.stats["refreshes"] == 1
    for c in (due_conn, fresh, broken):
        c.refresh_from_db()
    assert due_conn.refresh_token != before[due_conn.pk]
    assert fresh.refresh_token == before[fresh.pk]
    assert broken.refresh_token == before[broken.pk]
