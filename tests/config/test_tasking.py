"""The base task class: transient infrastructure errors retry with bounded backoff (and never reuse
a dead database connection); programming errors do not; in-process retries never reach the caller."""

from __future__ import annotations

import threading

import pytest
from celery import shared_task
from django.db import OperationalError, connection
from redis.exceptions import ConnectionError as RedisConnectionError

from cohorts.tasking import INFRASTRUCTURE_MAX_RETRIES, PortalTask, set_eager_deferrer
from config.celery_app import app
from config.embedded import EmbeddedRunner

calls: list[int] = []
failures: dict[str, list[BaseException]] = {}


@shared_task(name="tests.flaky", bind=True)
def flaky(self, key: str) -> str:
    calls.append(self.request.retries)
    if failures[key]:
        raise failures[key].pop(0)
    return "done"


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    failures.clear()
    yield
    set_eager_deferrer(None)


@pytest.fixture
def deferred():
    out: list[tuple[object, float]] = []
    set_eager_deferrer(lambda sig, countdown: out.append((sig, countdown)))
    return out


def test_every_task_of_ours_is_a_portal_task():
    from withings.tasks import backfill_step

    assert isinstance(backfill_step, PortalTask)
    assert isinstance(flaky, PortalTask)
    from measurements.tasks import run_export

    assert isinstance(run_export, PortalTask)


@pytest.mark.parametrize(
    "error", [OperationalError("terminating connection due to administrator command"), RedisConnectionError()]
)
def test_an_infrastructure_error_is_deferred_with_backoff_not_raised(deferred, error):
    failures["k"] = [error]
    result = flaky.delay("k")  # eager, exceptions propagate: as in `make run`
    assert result.state == "IGNORED"
    assert calls == [0]
    ((signature, countdown),) = deferred
    assert 2 <= countdown <= 4
    assert signature.apply().get() == "done"
    assert calls == [0, 1]


def test_a_programming_error_is_not_retried(deferred):
    failures["k"] = [ValueError("a bug")]
    with pytest.raises(ValueError, match="a bug"):
        flaky.delay("k")
    assert deferred == []
    assert calls == [0]


def test_infrastructure_retries_are_bounded():
    """With retries running at once (eager, not propagating), a database that never comes back
    ends the task after the bounded number of retries, with the error."""
    failures["k"] = [OperationalError("down")] * (INFRASTRUCTURE_MAX_RETRIES + 5)
    app.conf.task_eager_propagates = False
    try:
        result = flaky.apply(args=["k"])
    finally:
        app.conf.task_eager_propagates = True
    assert result.state == "FAILURE"
    assert isinstance(result.result, OperationalError)
    assert len(calls) == INFRASTRUCTURE_MAX_RETRIES + 1


@pytest.mark.django_db(transaction=True)
def test_a_dead_database_connection_is_discarded_before_the_retry(deferred):
    connection.ensure_connection()
    dead = connection.connection

    @shared_task(name="tests.kills_its_connection", bind=True)
    def kills_its_connection(self):
        if self.request.retries == 0:
            connection.errors_occurred = True  # what Django records when a query fails mid-flight
            connection.is_usable = lambda: False
            raise OperationalError("server closed the connection unexpectedly")
        return "ok"

    kills_its_connection.delay()
    assert connection.connection is None  # closed, not reused
    del connection.is_usable
    assert dead.closed
    assert len(deferred) == 1


def test_the_embedded_runner_runs_a_deferred_retry_after_its_countdown():
    failures["k"] = [RedisConnectionError()]
    done = threading.Event()
    runner = EmbeddedRunner(schedule={})
    original = runner.defer

    def defer(signature, countdown):
        original(signature, 0.2)
        runner._push(runner._clock() + 0.5, "check", done.set)

    runner.defer = defer
    runner.start()
    set_eager_deferrer(runner.defer)
    try:
        assert flaky.delay("k").state == "IGNORED"
        assert done.wait(5)
        assert calls == [0, 1]
    finally:
        runner.stop()


def test_the_embedded_runner_runs_the_beat_schedule():
    ran = threading.Event()

    @shared_task(name="tests.beat_probe")
    def beat_probe():
        ran.set()

    runner = EmbeddedRunner(
        schedule={"probe": {"task": "tests.beat_probe", "schedule": 0.1}}, first_run_after=0
    )
    runner.start()
    try:
        assert ran.wait(5)
        ran.clear()
        assert ran.wait(5)  # and again, every interval
    finally:
        runner.stop()
