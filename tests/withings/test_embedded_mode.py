"""The embedded default (`make run`: no REDIS_URL, tasks in-process, exceptions propagate): Withings
being busy never shows a participant an error page, an interrupted back-fill is resumed, deliveries
coalesce, and no identical call is ever sent twice within Withings' 10 s window."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from core.tasking import set_eager_deferrer
from measurements.models import BloodPressureReading
from tests.factories import ParticipantFactory
from tests.fixtures.withings import after_identical_call_window, bp_groups_visible, linked_connection
from tests.withings.test_link_flow import authorize, start
from withings.client import api_post
from withings.errors import WithingsRateLimited
from withings.models import Notification, WithingsConnection
from withings.sandbox import bp_group
from withings.selectors import app_credentials_for_connection
from withings.tasks import resume_backfills

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def embedded(settings):
    """As `make run` has it: eager tasks whose exceptions reach the caller."""
    from config.celery_app import app

    assert app.conf.task_always_eager
    assert app.conf.task_eager_propagates


@pytest.fixture
def deferred():
    """What an embedded runner would run later: the retries tasks asked for, with their countdowns."""
    calls: list[tuple[object, float]] = []
    set_eager_deferrer(lambda sig, countdown: calls.append((sig, countdown)))
    yield calls
    set_eager_deferrer(None)


def stored(participant) -> list[int]:
    return list(BloodPressureReading.objects.filter(participant=participant).values_list("grpid", flat=True))


def link_with_history(client, sandbox, django_capture_on_commit_callbacks, *, days: int = 30):
    participant = ParticipantFactory()
    back = authorize(start(client, participant))
    uid = sandbox.state.users()[-1]
    sandbox.state.generate_readings(uid, start=sandbox.clock() - days * 86400, days=days, seed=7)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(reverse("withings_callback"), back)
    return participant, uid, response


def test_linking_while_withings_answers_601_shows_connected_and_the_backfill_resumes(
    client, sandbox, django_capture_on_commit_callbacks, deferred
):
    sandbox.state.page_size = 5
    sandbox.state.set_fault("601", endpoint="measure", probability=0.3, wait_seconds=2)

    participant, uid, response = link_with_history(client, sandbox, django_capture_on_commit_callbacks)

    assert sandbox.state.stats.get("status.601", 0) >= 1
    assert response.status_code == 302
    assert response["Location"] == reverse("withings_connected")
    assert client.get(response["Location"]).status_code == 200
    connection = WithingsConnection.objects.get(participant=participant)
    assert connection.status == WithingsConnection.Status.ACTIVE
    expected = bp_groups_visible(sandbox, uid)
    assert len(expected) > 40
    assert len(stored(participant)) < len(expected)  # interrupted: the rest waits for its retry
    assert deferred, "the retry was handed to the runner, not raised into the request"
    assert all(1 <= countdown <= 8 for _, countdown in deferred)  # wait_seconds (+ jitter)

    # The runner runs what was deferred once its countdown is over (faults cleared so it finishes).
    sandbox.state.clear_faults()
    after_identical_call_window()
    while deferred:
        signature, _ = deferred.pop(0)
        signature.apply()
    grpids = stored(participant)
    assert sorted(grpids) == sorted(expected)
    connection.refresh_from_db()
    assert connection.backfill_completed_at is not None
    assert connection.backfill_cursor is None


def test_an_interrupted_backfill_without_a_runner_is_resumed_by_the_scanner_and_by_withings_sync(
    client, sandbox, settings, django_capture_on_commit_callbacks
):
    sandbox.state.page_size = 5
    sandbox.state.set_fault("601", endpoint="measure", probability=0.3, wait_seconds=2)
    participant, uid, response = link_with_history(client, sandbox, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    expected = bp_groups_visible(sandbox, uid)
    partial = len(stored(participant))
    assert 0 < partial < len(expected)
    sandbox.state.clear_faults()
    after_identical_call_window()

    # Not stalled yet: the scanner leaves it alone.
    assert resume_backfills() == 0
    # Stalled: one step is re-queued (in-process it runs the whole chain at once).
    WithingsConnection.objects.filter(participant=participant).update(
        backfill_progress_at=timezone.now()
        - dt.timedelta(seconds=settings.WITHINGS_BACKFILL_STALL_SECONDS + 1)
    )
    assert resume_backfills() == 1
    assert sorted(stored(participant)) == sorted(expected)
    assert resume_backfills() == 0  # complete: nothing to resume


def test_withings_sync_finishes_an_unfinished_backfill(sandbox, capsys):
    sandbox.state.page_size = 5
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 20 * 86400, days=20, seed=3)
    expected = bp_groups_visible(sandbox, uid)
    from withings.services.sync import connection_backfill_step

    connection_backfill_step(connection_id=connection.pk)  # one page, then the chain died
    connection.refresh_from_db()
    assert connection.sync_watermark is not None
    assert connection.backfill_cursor
    assert len(stored(connection.participant)) == 5

    after_identical_call_window()
    call_command("withings_sync")
    assert sorted(stored(connection.participant)) == sorted(expected)
    connection.refresh_from_db()
    assert connection.backfill_completed_at is not None
    out = capsys.readouterr().out
    assert f"{len(expected) - 5} new" in out


def test_withings_sync_waits_out_a_601_and_reports_each_participant(sandbox, capsys):
    ok = linked_connection(sandbox)
    busy = linked_connection(sandbox)
    for c in (ok, busy):
        sandbox.state.add_groups(c.withings_userid, [bp_group(131, 84, 70, date=int(sandbox.clock()) - 60)])
    sandbox.state.set_fault("601", endpoint="measure", count=1, wait_seconds=1)
    started = time.monotonic()
    call_command("withings_sync")
    assert time.monotonic() - started >= 1  # waited what Withings asked for
    assert BloodPressureReading.objects.filter(systolic=131).count() == 2
    out = capsys.readouterr()
    assert "2 participant(s): 2 new, 0 updated, 0 failed" in out.out
    assert "retry" in out.err  # the wait is reported


def test_withings_sync_fails_only_for_what_still_fails(sandbox, capsys):
    ok = linked_connection(sandbox)
    broken = linked_connection(sandbox)
    sandbox.state.add_groups(ok.withings_userid, [bp_group(132, 85, 71, date=int(sandbox.clock()) - 60)])
    sandbox.state.revoke_user(broken.withings_userid, sandbox.client_id)
    with pytest.raises(CommandError, match="1 participant"):
        call_command("withings_sync")
    assert BloodPressureReading.objects.filter(participant=ok.participant, systolic=132).count() == 1
    err = capsys.readouterr().err
    assert str(broken.participant) in err
    assert str(ok.participant) not in err


def test_deliveries_for_one_connection_coalesce_and_no_identical_call_is_repeated(
    client, sandbox, django_capture_on_commit_callbacks, deferred
):
    sandbox.state.identical_call_window = 10  # Withings' rule, enforced by the sandbox
    connection = linked_connection(sandbox)
    from withings.services.sync import connection_backfill_step

    connection_backfill_step(connection_id=connection.pk)
    sandbox.clock.advance(60)
    sandbox.state.add_groups(
        connection.withings_userid, [bp_group(144, 91, 72, date=int(sandbox.clock()) - 30)]
    )
    before = sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas")
    url = reverse("withings_notify", args=[_secret()])
    for n in range(5):
        payload = {
            "userid": connection.withings_userid,
            "appli": "4",
            "startdate": str(n),
            "enddate": str(n + 1),
        }
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, payload).status_code == 200

    getmeas = sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas") - before
    assert getmeas == 1  # the first delivery synced; the other four wait for the window
    assert BloodPressureReading.objects.filter(systolic=144).count() == 1
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == 4
    assert len(deferred) == 4
    assert all(1 <= c <= 15 for _, c in deferred)

    after_identical_call_window()
    for signature, _ in deferred:
        signature.apply()
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == 0
    total = sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas") - before
    assert total == 2  # one sync covered the four deliveries
    assert sandbox.state.stats.get("status.601", 0) == 0


def test_an_identical_call_is_never_sent_within_the_window(sandbox):
    sandbox.state.identical_call_window = 10
    connection = linked_connection(sandbox)
    credentials = app_credentials_for_connection(connection)
    params = {"action": "getdevice"}
    api_post(credentials, "/v2/user", params, access_token=connection.access_token)
    calls = len(sandbox.state.request_log())
    with pytest.raises(WithingsRateLimited) as refused:
        api_post(credentials, "/v2/user", params, access_token=connection.access_token)
    assert 0 < refused.value.wait_seconds <= 10
    assert len(sandbox.state.request_log()) == calls  # nothing was sent
    assert sandbox.state.stats.get("status.601", 0) == 0
    from withings.ratelimit import get_limiter

    get_limiter().acquire(credentials.limiter_key, timeout=1)  # the app is not paused: a slot at once


def test_a_backfill_step_of_a_replaced_chain_does_nothing_and_a_redelivered_one_goes_on(sandbox):
    from withings.services.sync import connection_backfill_step as step

    sandbox.state.page_size = 5
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 10 * 86400, days=10, seed=2)
    first = step(connection_id=connection.pk, chain=0)
    assert (first.more, first.superseded, first.chain) == (True, False, 0)
    # Redelivered (a worker killed after its commit): the same chain goes on from the cursor.
    again = step(connection_id=connection.pk, chain=0)
    assert (again.superseded, again.pages) == (False, 1)
    # The scanner re-queued the back-fill as stalled: a new chain; the old one stops at its next step.
    WithingsConnection.objects.filter(pk=connection.pk).update(backfill_chain=1)
    calls = len(sandbox.state.request_log())
    assert step(connection_id=connection.pk, chain=0).superseded is True
    assert len(sandbox.state.request_log()) == calls
    assert step(connection_id=connection.pk, chain=1).pages == 1


def _secret() -> str:
    from withings.services.notifications import notify_secret

    return notify_secret()
