"""Urgent first: the coordinators' home is the worklist, most urgent first (crisis past its deadline,
crisis, crisis acknowledged today, link broken, no data, below target, anything else); each BP row
shows the value and the alert's age in the participant's zone; acknowledged crises stay for the rest of
the study's day; acknowledging a crisis needs a note; notes form an audited thread on the alert page;
alert e-mails link to that page; the Alerts list sorts by urgency with its button in view."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, Role
from measurements.models import Alert, AlertNote, DailyAdherence, StudyProtocol
from measurements.monitoring.alerts import (
    NOTE_REQUIRED_MESSAGE,
    alert_acknowledge,
    alert_note_add,
    alerts_check_readings,
)
from measurements.monitoring.display import local_time
from measurements.monitoring.severity import day_start
from measurements.monitoring.worklist import worklist_items
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db
HOME = "/admin/"
ALERTS = reverse("admin:measurements_alert_changelist")
CLASSES = ["OVERDUE", "CRISIS", "ACKED", "LINK", "NODATA", "BELOW", "BATTERY"]


def crisis(p: Participant, systolic: int, diastolic: int, opened_at: dt.datetime) -> Alert:
    value = f"{systolic}/{diastolic} mmHg at {opened_at:%Y-%m-%d %H:%M} UTC"
    return Alert.objects.create(
        study=p.study,
        participant=p,
        kind=Alert.Kind.CRISIS,
        episode_key=f"reading:{opened_at.isoformat()}",
        detail={"value": value, "systolic": str(systolic), "diastolic": str(diastolic), "count": 1},
        opened_at=opened_at,
    )


def ladder(study, site, prefix: str, acknowledger=None) -> dict[str, Participant]:
    """One participant per urgency class (`<prefix>-<CLASS>`), each on the list for that reason only:
    everyone else has a reading 2 h ago and a full last week against an 80 % target."""
    at = now()
    StudyProtocol.objects.get_or_create(study=study, defaults={"duration_days": None})
    people = {
        name: ParticipantFactory(study=study, site=site, code=f"{prefix}-{name}", timezone="Europe/Paris")
        for name in CLASSES
    }
    Participant.objects.filter(pk=people["OVERDUE"].pk).update(timezone="America/Chicago")
    people["OVERDUE"].refresh_from_db()
    for name, p in people.items():
        if name != "NODATA":
            ReadingFactory(participant=p, measured_at=at - dt.timedelta(hours=2))
    DailyAdherence.objects.bulk_create(
        DailyAdherence(
            study=study,
            participant=p,
            day=at.date() - dt.timedelta(days=d),
            counted=1 if name == "BELOW" else 4,
            expected=4,
        )
        for name, p in people.items()
        for d in range(1, 8)
    )
    crisis(people["OVERDUE"], 186, 124, at - dt.timedelta(hours=6))
    crisis(people["CRISIS"], 192, 110, at - dt.timedelta(hours=1))
    acked = crisis(people["ACKED"], 201, 99, at - dt.timedelta(hours=3))
    if acknowledger is not None:
        alert_acknowledge(
            actor=acknowledger, alert_id=acked.pk, note="Called; seen by the GP today.", outcome="contacted"
        )
    Participant.objects.filter(pk=people["LINK"].pk).update(link_status=Participant.LinkStatus.NEEDS_REAUTH)
    Alert.objects.create(study=study, participant=people["NODATA"], kind=Alert.Kind.NO_DATA, episode_key="x")
    Alert.objects.create(
        study=study, participant=people["BATTERY"], kind=Alert.Kind.LOW_BATTERY, episode_key="b"
    )
    return people


@pytest.fixture
def world():
    alpha = StudyFactory(slug="alpha", name="Alpha heart study", default_timezone="Europe/Paris")
    north, south = SiteFactory(study=alpha, code="north"), SiteFactory(study=alpha, code="south")
    coordinator = MembershipFactory(study=alpha, role=Role.COORDINATOR).user
    ladder(alpha, north, "N", acknowledger=coordinator)
    ladder(alpha, south, "S", acknowledger=coordinator)
    bravo = StudyFactory(slug="bravo", name="Bravo kidney study")
    ladder(bravo, SiteFactory(study=bravo), "B", acknowledger=MembershipFactory(study=bravo).user)
    return alpha, north, coordinator


def worklist_codes(html: str) -> list[str]:
    section = html.split('id="home-worklist"')[1].split("</section>")[0]
    return re.findall(r'/monitoredparticipant/\d+/change/">([A-Z]-[A-Z]+)</a>', section)


def test_home_worklist_is_most_urgent_first_with_bp_value_age_and_zone(client, world):
    _alpha, _north, coordinator = world
    client.force_login(coordinator)
    response = client.get(HOME)
    html = response.content.decode()
    codes = worklist_codes(html)
    # By class; within one, the longest-waiting alert first (north's ladder was made first).
    assert codes == [f"{site}-{c}" for c in CLASSES for site in "NS"]
    assert not any(code.startswith("B-") for code in codes)  # bravo is another study

    overdue = Alert.objects.get(participant__code="N-OVERDUE")
    row = html.split(">N-OVERDUE</a>")[1].split("</tr>")[0]
    assert "186/124 mmHg" in row
    assert "opened 6 h ago" in row
    assert local_time(overdue.opened_at, "America/Chicago") in row
    assert "America/Chicago" in row
    assert "past the response deadline" in row
    assert "Crisis, past deadline" in html.split("N-OVERDUE")[0].rsplit("<tr", 1)[1]
    ack_url = reverse("admin:measurements_alert_acknowledge", args=[overdue.pk])
    assert ack_url in row  # the action sits on the row

    acked = Alert.objects.get(participant__code="N-ACKED")
    row = html.split(">N-ACKED</a>")[1].split("</tr>")[0]
    assert "201/99 mmHg" in row
    assert f"Acknowledged by {coordinator} at {local_time(acked.acknowledged_at, 'Europe/Paris')}" in row
    assert reverse("admin:measurements_alert_acknowledge", args=[acked.pk]) not in row
    assert "Hypertensive crisis reading</a> (acknowledged)" in row


def test_worklist_ranks_one_participant_per_class(world):
    alpha, north, _coordinator = world
    site_limited = MembershipFactory(study=alpha, role=Role.COORDINATOR, site=north).user
    items = worklist_items(user=site_limited, limit=50)
    assert [i.participant.code for i in items] == [f"N-{c}" for c in CLASSES]
    assert [i.severity_label for i in items] == [
        "Crisis, past deadline",
        "Crisis",
        "Crisis, acknowledged",
        "Link broken",
        "No data",
        "Below target",
        "Other",
    ]
    assert items[0].alerts[0].bp_value == "186/124 mmHg"
    assert items[0].alerts[0].opened_ago == "6 h"


def test_an_acknowledged_crisis_stays_until_the_end_of_the_studys_day(client):
    # The study's day (Auckland) ends at another hour than the participant's (Paris): the study's counts.
    study = StudyFactory(default_timezone="Pacific/Auckland")
    StudyProtocol.objects.create(study=study, duration_days=None)
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    p = ParticipantFactory(study=study, code="ACK-1", timezone="Europe/Paris")
    ReadingFactory(participant=p, measured_at=now() - dt.timedelta(hours=1))
    alert = crisis(p, 190, 100, now() - dt.timedelta(minutes=30))
    alert_acknowledge(
        actor=coordinator, alert_id=alert.pk, note="Called back, repeat 150/90.", outcome="contacted"
    )

    today = worklist_items(user=coordinator, limit=10)
    assert [i.participant.code for i in today] == ["ACK-1"]
    assert today[0].severity_label == "Crisis, acknowledged"
    assert today[0].alerts[0].alert.acknowledged_by == coordinator

    midnight = day_start("Pacific/Auckland", now()) + dt.timedelta(days=1)
    assert midnight.tzinfo is not None
    assert midnight > now()
    late = worklist_items(user=coordinator, limit=10, at=midnight - dt.timedelta(minutes=1))
    assert [i.participant.code for i in late] == ["ACK-1"]
    assert worklist_items(user=coordinator, limit=10, at=midnight + dt.timedelta(minutes=1)) == []
    client.force_login(coordinator)
    assert "ACK-1" in client.get(HOME).content.decode()


def test_acknowledging_a_crisis_without_a_note_is_refused_and_changes_nothing(client, world):
    _alpha, _north, coordinator = world
    alert = Alert.objects.get(participant__code="N-CRISIS")
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="Write what was done"):
        alert_acknowledge(actor=coordinator, alert_id=alert.pk, note="   ", outcome="contacted")

    client.force_login(coordinator)
    url = reverse("admin:measurements_alert_acknowledge", args=[alert.pk])
    response = client.post(url, {"note": "  ", "outcome": "contacted"})
    assert response.status_code == 200
    assert NOTE_REQUIRED_MESSAGE in response.content.decode()
    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.acknowledged_by, alert.resolved_at, alert.note) == (
        None,
        None,
        None,
        "",
    )
    assert AuditEvent.objects.count() == before
    assert not AuditEvent.objects.filter(action="alert.acknowledged", detail__alert=alert.pk).exists()

    # A state alert (no data) may still be acknowledged without a note.
    state = Alert.objects.get(participant__code="N-NODATA")
    alert_acknowledge(actor=coordinator, alert_id=state.pk, note="")
    assert AuditEvent.objects.filter(action="alert.acknowledged", detail__alert=state.pk).count() == 1


def test_notes_thread_on_the_alert_page_is_audited_in_order(client, world):
    alpha, _north, coordinator = world
    alert = Alert.objects.get(participant__code="N-ACKED")
    page = reverse("admin:measurements_alert_change", args=[alert.pk])
    client.force_login(coordinator)
    assert client.post(page, {"text": "GP confirmed 150/95 on repeat."}).status_code == 302
    alert_note_add(actor=coordinator, alert_id=alert.pk, text="  Second visit booked.  ")
    notes = list(AlertNote.objects.filter(alert=alert))
    assert [(n.text, n.author) for n in notes] == [
        ("GP confirmed 150/95 on repeat.", coordinator),
        ("Second visit booked.", coordinator),
    ]
    events = AuditEvent.objects.filter(action="alert.note_added").order_by("pk")
    assert [(e.actor, e.detail["alert"], e.detail["note_id"], e.detail["note"]) for e in events] == [
        (coordinator, alert.pk, n.pk, n.text) for n in notes
    ]
    assert {e.study_id for e in events} == {alpha.pk}

    html = client.get(page).content.decode()
    thread = html.split('id="alert-notes"')[1].split("</ol>")[0]
    order = [
        thread.index(t) for t in ("Called; seen by the GP today.", "GP confirmed 150/95", "Second visit")
    ]
    assert order == sorted(order)
    assert "201/99 mmHg" in html

    # An empty note, an investigator's note, another study's coordinator: nothing added, nothing audited.
    response = client.post(page, {"text": "   "})
    assert response.status_code == 200
    assert "Write the note first" in response.content.decode()
    client.force_login(MembershipFactory(study=alpha, role=Role.INVESTIGATOR).user)
    assert client.get(page).status_code == 200
    assert client.post(page, {"text": "Not mine to add."}).status_code == 403
    client.force_login(MembershipFactory(study=StudyFactory(), role=Role.COORDINATOR).user)
    assert client.get(page).status_code == 404
    assert client.post(page, {"text": "Nor mine."}).status_code == 404
    assert AlertNote.objects.filter(alert=alert).count() == 2
    assert AuditEvent.objects.filter(action="alert.note_added").count() == 2


def test_alert_email_links_straight_to_the_alert(client, django_capture_on_commit_callbacks):
    study = StudyFactory(slug="mailed")
    StudyProtocol.objects.create(study=study, duration_days=None)
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    p = ParticipantFactory(study=study, code="MAIL-1")
    at = now() - dt.timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        alert = alerts_check_readings(participant_id=p.pk, readings=[(at, Decimal(186), Decimal(124))])
    assert alert is not None
    (message,) = mail.outbox
    url = f"{settings.PORTAL_BASE_URL}/admin/measurements/alert/{alert.pk}/change/"
    assert url in message.body
    client.force_login(coordinator)
    page = client.get(url.removeprefix(settings.PORTAL_BASE_URL))
    assert page.status_code == 200
    assert "186/124 mmHg" in page.content.decode()


def test_alert_list_sorts_by_urgency_with_the_button_on_each_open_row(client, world):
    alpha, north, _coordinator = world
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR, site=north).user)
    html = client.get(ALERTS).content.decode()
    rows = re.findall(r'/monitoredparticipant/\d+/change/">([A-Z]-[A-Z]+)</a>', html)
    # Open: past deadline, crisis, no data, other; then the closed (acknowledged) crisis.
    assert rows == ["N-OVERDUE", "N-CRISIS", "N-NODATA", "N-BATTERY", "N-ACKED"]
    for code in ("N-OVERDUE", "N-CRISIS", "N-NODATA", "N-BATTERY"):
        alert = Alert.objects.get(participant__code=code)
        row = html.split(f">{code}</a>")[1].split("</tr>")[0]
        assert reverse("admin:measurements_alert_acknowledge", args=[alert.pk]) in row, code
        assert reverse("admin:measurements_alert_change", args=[alert.pk]) in row, code
    assert "186/124 mmHg" in html.split(">N-OVERDUE</a>")[1].split("</tr>")[0]
    assert "Acknowledged by" in html.split(">N-ACKED</a>")[1].split("</tr>")[0]

    client.force_login(MembershipFactory(study=alpha, role=Role.INVESTIGATOR).user)
    html = client.get(ALERTS).content.decode()
    assert "N-OVERDUE" in html
    assert "S-OVERDUE" in html
    assert "/acknowledge/" not in html


def test_site_limited_coordinator_sees_only_their_sites_rows(client, world):
    alpha, north, _coordinator = world
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR, site=north).user)
    home = client.get(HOME).content.decode()
    assert worklist_codes(home) == [f"N-{c}" for c in CLASSES]
    alerts = client.get(ALERTS).content.decode()
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    for html in (home, alerts, worklist):
        assert "S-" not in " ".join(re.findall(r">([A-Z]-[A-Z]+)<", html))
        assert "B-" not in " ".join(re.findall(r">([A-Z]-[A-Z]+)<", html))
        assert "Bravo" not in html
    south = Alert.objects.get(participant__code="S-CRISIS")
    bravo = Alert.objects.get(participant__code="B-CRISIS")
    for alert in (south, bravo):
        assert client.get(reverse("admin:measurements_alert_change", args=[alert.pk])).status_code == 404
        ack = reverse("admin:measurements_alert_acknowledge", args=[alert.pk])
        assert client.post(ack, {"note": "not mine"}).status_code == 404
        alert.refresh_from_db()
        assert alert.acknowledged_at is None


def test_data_managers_keep_their_home_without_a_worklist(client, world):
    alpha, _north, _coordinator = world
    client.force_login(MembershipFactory(study=alpha, role=Role.DATA_MANAGER).user)
    html = client.get(HOME).content.decode()
    assert 'id="home-exports"' in html
    assert 'id="study-alpha"' in html
    assert 'id="home-worklist"' not in html
    assert "/acknowledge/" not in html


def _count(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    ("url", "most"), [(HOME, 14), (ALERTS, 9), (reverse("admin:measurements_monitoring_worklist"), 9)]
)
def test_query_counts_do_not_grow_with_rows(client, world, url, most, django_assert_max_num_queries):
    alpha, _north, coordinator = world
    client.force_login(coordinator)
    small = _count(client, url)
    for n in range(4):
        ladder(alpha, SiteFactory(study=alpha), f"{'WXYZ'[n]}", acknowledger=coordinator)
    large = _count(client, url)
    assert small == large, (small, large)
    with django_assert_max_num_queries(most):
        client.get(url)


def test_alert_page_query_count(client, world, django_assert_max_num_queries):
    _alpha, _north, coordinator = world
    alert = Alert.objects.get(participant__code="N-ACKED")
    for k in range(5):
        alert_note_add(actor=coordinator, alert_id=alert.pk, text=f"note {k}")
    client.force_login(coordinator)
    with django_assert_max_num_queries(10):  # + the escalation steps
        assert client.get(reverse("admin:measurements_alert_change", args=[alert.pk])).status_code == 200
