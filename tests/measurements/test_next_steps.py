"""'What to do next' for a participant: the protocol's routine in words and the days it runs, read
from the study protocol (its windows, counts and duration), as of a given instant in their zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import Participant
from measurements.models import StudyProtocol
from measurements.monitoring.next_steps import NextSteps, participant_next_steps
from tests.factories import ParticipantFactory, StudyFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
DEFAULT_ROUTINE = (
    "Take 2 readings each morning between 04:00 and 12:00, and 2 each evening between 17:00 and midnight."
)


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def participant(start: dt.date | None, *, protocol: dict | None = None, **kwargs) -> Participant:
    study = StudyFactory(**kwargs.pop("study", {}))
    if protocol is not None:
        StudyProtocol.objects.create(study=study, **protocol)
    return ParticipantFactory(study=study, timezone="Europe/Paris", start_date=start, **kwargs)


def test_just_enrolled_on_the_default_protocol():
    steps = participant_next_steps(participant(dt.date(2026, 3, 10)), at=paris(2026, 3, 10, 9, 0))
    assert steps == NextSteps(
        DEFAULT_ROUTINE, "Start today, Tuesday 10 March, and keep going until Monday 16 March."
    )


def test_after_the_last_window_of_the_day_it_starts_tomorrow():
    protocol = {"evening_start": dt.time(18, 0), "evening_end": dt.time(21, 30), "readings_per_window": 1}
    who = participant(dt.date(2026, 3, 10), protocol=protocol)
    steps = participant_next_steps(who, at=paris(2026, 3, 10, 21, 30))
    assert steps.routine == (
        "Take 1 reading each morning between 04:00 and 12:00, and 1 each evening between 18:00 and 21:30."
    )
    assert steps.when == "Start tomorrow, Wednesday 11 March, and keep going until Monday 16 March."
    assert participant_next_steps(who, at=paris(2026, 3, 10, 21, 29)).when.startswith("Start today, ")


def test_a_later_start_and_an_open_ended_daily_protocol():
    later = participant(dt.date(2026, 3, 13))
    assert participant_next_steps(later, at=paris(2026, 3, 10, 9, 0)).when == (
        "Start on Friday 13 March, and keep going until Thursday 19 March."
    )
    daily = participant(
        dt.date(2026, 3, 11),
        protocol={"kind": StudyProtocol.Kind.DAILY, "readings_per_day": 3, "duration_days": None},
    )
    assert participant_next_steps(daily, at=paris(2026, 3, 10, 23, 0)) == NextSteps(
        "Take 3 readings each day.", "Start tomorrow, Wednesday 11 March."
    )


def test_under_way_and_over():
    who = participant(dt.date(2026, 3, 7))
    assert (
        participant_next_steps(who, at=paris(2026, 3, 10, 9, 0)).when == "Keep going until Friday 13 March."
    )
    assert participant_next_steps(who, at=paris(2026, 3, 14, 9, 0)) == NextSteps(
        None, "The measuring days ended on Friday 13 March."
    )
    open_ended = participant(dt.date(2026, 3, 7), protocol={"duration_days": None})
    assert participant_next_steps(open_ended, at=paris(2026, 3, 10, 9, 0)) == NextSteps(DEFAULT_ROUTINE, None)


def test_not_linked_yet_has_the_routine_but_no_dates():
    who = participant(dt.date(2026, 3, 10), status=Participant.Status.CONSENTED)
    assert participant_next_steps(who, at=paris(2026, 3, 10, 9, 0)) == NextSteps(DEFAULT_ROUTINE, None)


def test_the_status_page_says_what_to_do_next(client):
    from django.utils.timezone import localdate

    who = participant(localdate(timezone=PARIS) + dt.timedelta(days=2), protocol={"readings_per_window": 3})
    token = enrollment.participant_reissue_status_link(actor=None, participant=who)
    html = client.get(reverse("participant_status", args=[token])).content.decode()
    assert "What to do next" in html
    assert (
        "Take 3 readings each morning between 04:00 and 12:00, and 3 each evening between 17:00 and midnight."
        in html
    )
    assert "Start on " in html
    assert "the study asks for" not in html  # nothing expected before the start
    assert f'<p class="private-link" id="private-link">http://testserver/p/{token}/</p>' in html
    assert 'data-copy-target="#private-link"' in html
    assert "/static/js/copy-button.js" in html
    assert "<script>" not in html  # CSP: no inline script
