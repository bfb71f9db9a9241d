"""The tick registry: every registered job runs with the same instant and options; messaging's rules
are registered by the app; an instant without a zone is refused before any job runs."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from core import ticking

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(monkeypatch):
    calls: list[ticking.TickRequest] = []

    def job(request: ticking.TickRequest) -> list[ticking.TickLine]:
        calls.append(request)
        return [ticking.TickLine("alerts", "demo", "escalated", 2)]

    monkeypatch.setattr(ticking, "_jobs", {**ticking.tick_jobs(), "alerts": job})
    return calls


def test_messaging_registers_its_rules():
    assert "messaging" in ticking.tick_jobs()


def test_a_registered_job_runs_with_the_commands_instant_study_and_dry_run(recorded):
    out = io.StringIO()
    call_command("tick", at="2026-03-29T01:30:00+01:00", dry_run=True, stdout=out)
    assert recorded == [ticking.TickRequest(at=dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC), dry_run=True)]
    assert "demo: escalated 2" in out.getvalue()


def test_a_naive_instant_reaches_no_job(recorded):
    with pytest.raises(ValueError, match="aware instant"):
        ticking.tick_run(ticking.TickRequest(at=dt.datetime(2026, 3, 29, 1, 30)))
    assert recorded == []
