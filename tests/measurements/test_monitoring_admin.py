"""Monitoring admin: the changelist's query count does not grow with rows; pages render for the
study's staff; another study's coordinator sees nothing and cannot acknowledge."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, Role
from measurements.models import Alert, BloodPressureReading, Device, StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.monitoring.alerts import alerts_evaluate
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:measurements_monitoredparticipant_changelist"


def populate(study, site, n: int, *, readings_each: int = 3, offset: int = 0) -> list[Participant]:
    """n participants with readings, a rollup, a cuff and (every 3rd) an open alert, in bulk."""
    start = now().date() - dt.timedelta(days=10)
    people = Participant.objects.bulk_create(
        Participant(study=study, site=site, code=f"Q-{offset + i:05d}", status=Participant.Status.ACTIVE,
                    timezone="Europe/Paris", start_date=start)
        for i in range(n)
    )  # fmt: skip
    base = now() - dt.timedelta(days=2)
    BloodPressureReading.objects.bulk_create(
        BloodPressureReading(participant=p, measured_at=base + dt.timedelta(hours=k),
                             systolic=Decimal(120 + k), diastolic=Decimal(80), source="api",
                             grpid=p.pk * 100 + k)
        for p in people
        for k in range(readings_each)
    )  # fmt: skip
    Device.objects.bulk_create(
        Device(participant=p, device_id=f"d{p.pk}", battery="high", last_session_at=base) for p in people
    )
    from measurements.models import DailyAdherence

    DailyAdherence.objects.bulk_create(
        DailyAdherence(
            study=study, participant=p, day=start + dt.timedelta(days=d), counted=d % 5, expected=4
        )
        for p in people
        for d in range(10)
        if d % 5 <= 4
    )
    Alert.objects.bulk_create(
        Alert(study=study, participant=p, kind=Alert.Kind.NO_DATA, episode_key="x") for p in people[::3]
    )
    return people


def count_queries(client, url) -> tuple[int, str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.parametrize("sort", ["", "?o=7", "?o=-9.2", "?adherence=below&silent=3&alerts=yes&link=broken"])
def test_changelist_query_count_is_the_same_for_10_and_1000_participants(
    client, sort, django_assert_max_num_queries
):
    study = StudyFactory(slug="alpha")
    StudyProtocol.objects.create(study=study, duration_days=None)
    site = SiteFactory(study=study, code="north")
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    url = reverse(CHANGELIST) + sort

    populate(study, site, 10)
    small, _html_small = count_queries(client, url)
    populate_more = populate(study, site, 990, readings_each=2, offset=10)
    assert len(populate_more) == 990
    large, html_large = count_queries(client, url)
    assert small == large, (small, large)
    assert small <= 13
    if not sort:
        assert html_large.count('class="field-code"') == 100  # one page of 100 rows
        assert "Q-00000" in html_large


def test_changelist_columns_and_scoping(client):
    study = StudyFactory(slug="alpha")
    StudyProtocol.objects.create(study=study, duration_days=None)
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    other = StudyFactory(slug="bravo")
    p = ParticipantFactory(
        study=study, site=north, code="A-NORTH", start_date=now().date() - dt.timedelta(days=9)
    )
    ParticipantFactory(study=study, site=south, code="A-SOUTH")
    ParticipantFactory(study=other, code="B-SECRET")
    ReadingFactory(
        participant=p, measured_at=now() - dt.timedelta(hours=3), systolic=Decimal(142), diastolic=Decimal(91)
    )
    Device.objects.create(participant=p, device_id="x" * 40, battery="low", last_session_at=now())
    adherence_rebuild_participant(participant_id=p.pk)
    alerts_evaluate(study_id=study.pk)

    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert "A-NORTH" in html
    assert "A-SOUTH" not in html
    assert "B-SECRET" not in html
    assert "142/91" in html
    assert "bp-stage_2" in html
    battery = r'<span class="battery battery-low"><svg[^>]*aria-hidden="true".*?</svg> Low</span>'
    assert re.search(battery, html)  # an icon and the word, not colour alone
    assert 'class="open-alerts"' in html

    client.force_login(MembershipFactory(study=other, role=Role.COORDINATOR).user)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert "A-NORTH" not in html
    assert "B-SECRET" in html
    assert client.get(reverse("admin:measurements_monitoredparticipant_change", args=[p.pk])).status_code in (
        302,
        404,
    )
    alerts_html = client.get(reverse("admin:measurements_alert_changelist")).content.decode()
    assert "A-NORTH" not in alerts_html
    assert client.get(reverse("admin:measurements_monitoring_study", args=["alpha"])).status_code == 404
    assert "A-NORTH" not in client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()


@pytest.fixture
def monitored(client):
    study = StudyFactory(slug="alpha", start_date=now().date() - dt.timedelta(days=20))
    StudyProtocol.objects.create(study=study, duration_days=None)
    p = ParticipantFactory(study=study, code="A-001", start_date=now().date() - dt.timedelta(days=12))
    for k in range(12):
        ReadingFactory(
            participant=p,
            measured_at=now() - dt.timedelta(days=k, hours=1),
            systolic=Decimal(130 + k),
            diastolic=Decimal(85),
        )
    ReadingFactory(
        participant=p,
        measured_at=now() - dt.timedelta(hours=2),
        systolic=Decimal(190),
        diastolic=Decimal(100),
    )
    adherence_rebuild_participant(participant_id=p.pk)
    from measurements.monitoring.alerts import alerts_check_readings

    alerts_check_readings(
        participant_id=p.pk, readings=[(now() - dt.timedelta(hours=2), Decimal(190), Decimal(100))]
    )
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    return study, p, coordinator


def test_participant_page_has_chart_calendar_readings_alerts(client, monitored):
    _study, p, coordinator = monitored
    client.force_login(coordinator)
    html = client.get(reverse("admin:measurements_monitoredparticipant_change", args=[p.pk])).content.decode()
    assert '<svg class="bp-chart"' in html
    # Systolic as dots, diastolic as squares: the two series differ by shape, not colour alone.
    assert html.count("<circle") == 13
    assert html.count('transform="translate(-2.2 -2.2)"') == 13
    # The same numbers as a table for those who cannot see the chart.
    chart_table = html.split("readings as a table</summary>")[1].split("</table>")[0]
    assert chart_table.count("<tr><td>") == 13
    assert "<td>190</td><td>100</td>" in chart_table
    assert "Adherence calendar" in html
    assert "bp-crisis" in html
    assert "Hypertensive crisis reading" in html
    assert "Acknowledge…" in html
    assert "cdn" not in html.lower()
    assert "<style" not in html  # the CSP allows no inline style
    assert 'style="' not in html
    assert not re.search(r'<script[^>]+src="https?://', html)


def test_study_page_and_worklist(client, monitored):
    study, _p, coordinator = monitored
    client.force_login(coordinator)
    html = client.get(reverse("admin:measurements_monitoring_study", args=[study.slug])).content.decode()
    assert "A-001" in html
    assert html.count('class="cell ') == 28
    assert re.search(r"bp-crisis\">Crisis</span> <strong>1</strong>", html)
    assert ">crisis<" not in html
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    assert "A-001" in worklist
    assert "Hypertensive crisis reading" in worklist


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_readings_table_and_study_page_show_category_labels_not_codes(client, monitored):
    study, p, coordinator = monitored
    client.force_login(coordinator)
    html = client.get(reverse("admin:measurements_monitoredparticipant_change", args=[p.pk])).content.decode()
    table = html.split("<h2>Readings</h2>")[1].split("</table>")[0]
    cells = re.findall(r'<span class="bp-cat bp-(\w+)">([^<]*)</span>', table)
    assert ("stage_2", "Stage 2") in cells
    assert ("stage_1", "Stage 1") in cells
    assert ("crisis", "Crisis") in cells
    text = _text(table)
    assert "Stage 2" in text
    assert not re.search(r"\b(stage_1|stage_2|crisis|normal|elevated)\b", text)
    study_page = client.get(reverse("admin:measurements_monitoring_study", args=[study.slug]))
    page = _text(study_page.content.decode())
    assert "Stage 2" in page
    assert "stage_2" not in page
    assert "stage_1" not in page


@pytest.mark.parametrize(("target", "shown"), [(50, False), (80, True)])
def test_worklist_names_low_adherence_against_the_studys_own_target(client, target, shown):
    study = StudyFactory()
    StudyProtocol.objects.create(study=study, duration_days=None, adherence_target_percent=target)
    first = populate(study, SiteFactory(study=study), 1)[0]  # 17 of 28 expected readings: 61 %
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    assert first.code in worklist  # on the list for its open alert either way
    assert ("7-day adherence 61%" in worklist) is shown


def test_a_withdrawn_participants_revoked_link_is_not_work(client):
    study = StudyFactory()
    site = SiteFactory(study=study)
    withdrawn, broken = populate(study, site, 2)  # each fresh: readings yesterday, no alert on #2
    Alert.objects.all().delete()
    Participant.objects.filter(pk=withdrawn.pk).update(
        status=Participant.Status.WITHDRAWN, link_status=Participant.LinkStatus.REVOKED
    )
    Participant.objects.filter(pk=broken.pk).update(link_status=Participant.LinkStatus.NEEDS_REAUTH)
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    assert broken.code in worklist
    assert "Link: Needs to link again" in worklist
    assert withdrawn.code not in worklist
    listing = client.get(reverse(CHANGELIST) + "?link=broken").content.decode()
    assert broken.code in listing
    assert withdrawn.code not in listing


def test_acknowledge_in_the_admin_with_a_note_is_audited(client, monitored):
    study, p, coordinator = monitored
    alert = Alert.objects.get(participant=p)
    url = reverse("admin:measurements_alert_acknowledge", args=[alert.pk])

    investigator = MembershipFactory(study=study, role=Role.INVESTIGATOR).user
    client.force_login(investigator)
    assert client.post(url, {"note": "nope"}).status_code == 403
    outsider = MembershipFactory(study=StudyFactory(), role=Role.COORDINATOR).user
    client.force_login(outsider)
    assert client.post(url, {"note": "nope"}).status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert not AuditEvent.objects.filter(action="alert.acknowledged").exists()

    client.force_login(coordinator)
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"note": "Phoned; repeat reading 150/90, GP tomorrow.", "outcome": "contacted"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == coordinator
    assert alert.note == "Phoned; repeat reading 150/90, GP tomorrow."
    event = AuditEvent.objects.get(action="alert.acknowledged")
    assert event.actor == coordinator
    assert event.detail["note"] == alert.note
    listing = client.get(reverse("admin:measurements_alert_changelist")).content.decode()
    assert "Phoned; repeat reading" in listing


def test_protocol_save_in_the_admin_rebuilds_adherence_from_the_day_it_takes_effect(
    client, monitored, django_capture_on_commit_callbacks
):
    study, p, coordinator = monitored
    client.force_login(coordinator)
    protocol = StudyProtocol.objects.get(study=study)
    url = reverse("admin:measurements_studyprotocol_change", args=[protocol.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(study=study.pk, kind="daily", readings_per_day=1, confirm=True)
    data["effective_from"] = p.start_date.isoformat()  # the participant's whole period
    data = {k: (v.strftime("%H:%M") if isinstance(v, dt.time) else v) for k, v in data.items()}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    from measurements.models import DailyAdherence

    assert set(DailyAdherence.objects.filter(participant=p).values_list("expected", flat=True)) == {1}
    assert AuditEvent.objects.filter(action="protocol.saved", study=study).count() == 1


def test_worklist_names_a_silence_once(client):
    study = StudyFactory()
    silent = ParticipantFactory(study=study, code="SILENT")
    Alert.objects.create(study=study, participant=silent, kind=Alert.Kind.NO_DATA, episode_key="x")
    quiet = ParticipantFactory(study=study, code="QUIET")  # no reading either, no alert yet
    from measurements.monitoring.worklist import worklist_items

    user = MembershipFactory(study=study, role=Role.COORDINATOR).user
    reasons = {item.participant.code: item.reasons for item in worklist_items(user=user, limit=10)}
    assert reasons == {silent.code: ["No reading for several days"], quiet.code: ["No recent reading"]}
