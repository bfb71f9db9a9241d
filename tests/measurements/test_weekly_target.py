"""The weekly target: the participant's status page and the coordinators' "7 days" column show the
same numbers for the same participant and protocol, both from `monitoring.counting`; a protocol
change does not rewrite the target of the days before it takes effect."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils.timezone import now

from cohorts import enrollment
from cohorts.models import Role
from measurements.models import StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.monitoring.counting import adherence_counts
from measurements.monitoring.services import protocol_save
from measurements.readings.selectors import participant_status_summary
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db
HBPM = {"kind": StudyProtocol.Kind.HBPM, "duration_days": None}
DAILY_10_DAYS = {"kind": StudyProtocol.Kind.DAILY, "readings_per_day": 3, "duration_days": 10}


@pytest.mark.parametrize(
    ("protocol", "started_days_ago", "target"),
    [
        (HBPM, 30, 28),  # a whole week in the protocol: 7 × (2 per window × 2 windows)
        (HBPM, 3, 12),  # three complete days since the start
        (DAILY_10_DAYS, 12, 15),  # the 10-day protocol ended 2 days ago: 5 of the 7 days count
        (None, 30, 0),  # no protocol configured: the default one (7 days) is long over
    ],
)
def test_status_page_and_monitoring_column_show_the_same_weekly_target(
    client, protocol, started_days_ago, target
):
    study = StudyFactory()
    if protocol is not None:
        StudyProtocol.objects.create(study=study, **protocol)
    today = now().date()
    participant = ParticipantFactory(
        study=study, timezone="UTC", start_date=today - dt.timedelta(days=started_days_ago)
    )
    for hours in (30, 54):
        ReadingFactory(participant=participant, measured_at=now() - dt.timedelta(hours=hours))
    adherence_rebuild_participant(participant_id=participant.pk)

    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    status = client.get(reverse("participant_status", args=[token])).content.decode()
    shown = re.search(r"of the (\d+) the study asks for", status)
    assert (int(shown.group(1)) if shown else 0) == target
    counted = re.search(r"Readings in the last 7 days:\s*<span[^>]*>(\d+)</span>", status).group(1)

    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    changelist = client.get(reverse("admin:measurements_monitoredparticipant_changelist")).content.decode()
    cell = re.search(r'<td class="field-week">([^<]*)</td>', changelist).group(1)
    if target:
        assert cell == f"{counted}/{target}"
    else:
        assert cell == "—"


def test_a_protocol_change_keeps_the_past_weeks_target(django_capture_on_commit_callbacks):
    """Was: saving 3 readings per window turned the past week's 28 into 42. Now the change takes
    effect from today: the seven complete days before keep their 28; tomorrow's target grows."""
    study = StudyFactory()
    protocol = StudyProtocol.objects.create(study=study, **HBPM)
    start = now().date() - dt.timedelta(days=30)
    participant = ParticipantFactory(study=study, timezone="UTC", start_date=start)
    adherence_rebuild_participant(participant_id=participant.pk)
    assert participant_status_summary(participant)["weekly_target"] == 28
    protocol.readings_per_window = 3
    with django_capture_on_commit_callbacks(execute=True):
        protocol_save(actor=None, protocol=protocol, effective_from=now().date())
    assert participant_status_summary(participant)["weekly_target"] == 28
    tomorrow = now() + dt.timedelta(days=1)  # six days of 4, then today under the new version
    assert adherence_counts(participant, at=tomorrow).week_expected == 6 * 4 + 6
