"""Clinical safety end to end (PostgreSQL, the SMS sandbox over HTTP, the locmem mailbox): a severe
reading → the participant's message at once, the coordinators' e-mail naming the deadline, escalation
by ``manage.py tick --at`` to the clinician (e-mail and SMS) once, never after acknowledgement, never
for a withdrawn participant; a re-measurement shown beside the first reading; a plan with participant
messages off, or keeping quiet hours."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection as db_connection
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, Role, StudyMembership
from cohorts.services import token_hash
from measurements.models import Alert, AlertEscalation, SafetyPlan
from measurements.monitoring.alerts import alert_acknowledge
from measurements.monitoring.escalation import alert_escalate
from measurements.monitoring.safety import approved_text, safety_plan_save
from messaging.models import Message, Reason, StudyMessaging
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory, UserFactory
from tests.fixtures.messaging import give_contact
from tests.measurements.test_monitoring_alerts import ingest

pytestmark = pytest.mark.django_db

PARTICIPANT_PHONE = "+33612345678"
CLINICIAN_PHONE = "+447700900456"
MESSAGE = "Sit quietly for 5 minutes and measure again. Chest pain or trouble speaking: call 112."
TOKEN = "tok-safety-0001"


@pytest.fixture
def world(settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    study = StudyFactory(
        slug="alpha", name="Alpha BP", default_timezone="Europe/London", contact_phone="+441234"
    )
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    participant = ParticipantFactory(
        study=study, site=north, code="A-001", start_date=now().date() - dt.timedelta(days=5)
    )
    Participant.objects.filter(pk=participant.pk).update(status_token_hash=token_hash(TOKEN))
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user
    south_coordinator = MembershipFactory(study=study, role=Role.COORDINATOR, site=south).user
    clinician = MembershipFactory(
        study=study, role=Role.INVESTIGATOR, safety_clinician=True, phone=CLINICIAN_PHONE
    ).user
    other_clinician = MembershipFactory(
        study=StudyFactory(slug="bravo"), role=Role.INVESTIGATOR, safety_clinician=True
    ).user
    operator = UserFactory(is_superuser=True, is_staff=True)
    plan = safety_plan_save(
        actor=coordinator,
        study=study,
        values={
            "severe_message": MESSAGE,
            "ack_minutes": 240,
            "escalation": [
                {"to": "clinician", "after_minutes": 120},
                {"to": "operators", "after_minutes": 60},
            ],
        },
    )
    return {
        "study": study,
        "participant": participant,
        "coordinator": coordinator,
        "south": south_coordinator,
        "clinician": clinician,
        "other_clinician": other_clinician,
        "operator": operator,
        "plan": plan,
    }


def severe(w, capture, *, sys=192, dia=124, when=None):
    with capture(execute=True):
        ingest(w["participant"], 1, sys, dia, when=when)


def tick(at: dt.datetime, capture) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("tick", "--at", at.isoformat(), stdout=out)
    return out.getvalue()


def test_severe_reading_tells_the_participant_mails_the_deadline_and_escalates_once_at_the_deadline(
    world, client, sms_gateway, django_capture_on_commit_callbacks
):
    w = world
    give_contact(w["participant"], phone=PARTICIPANT_PHONE, opt_in=False)  # safety is not a reminder
    severe(w, django_capture_on_commit_callbacks)

    alert = Alert.objects.get()
    assert (alert.kind, alert.safety_plan, alert.step) == (Alert.Kind.CRISIS, w["plan"], 0)
    deadline = alert.opened_at + dt.timedelta(hours=4)  # around the clock: 240 min
    assert alert.ack_deadline_at == alert.deadline_at == deadline

    # The participant: the plan's message, by SMS, at once (not held for a tick or quiet hours).
    [text] = sms_gateway.state.texts(PARTICIPANT_PHONE)
    assert text.body == f"Alpha BP: {MESSAGE} Study team: +441234"
    message = Message.objects.get(reason=Reason.SAFETY)
    assert (message.status, message.dedupe_key) == (Message.Status.SENT, f"safety:{alert.pk}")

    # The coordinators of the participant's site: one e-mail naming the deadline in the study's zone.
    [coordinators_mail] = mail.outbox
    assert coordinators_mail.to == [w["coordinator"].email]
    london = deadline.astimezone(ZoneInfo("Europe/London"))
    assert (
        f"Acknowledge by {london:%Y-%m-%d %H:%M} {london.tzname()} (Europe/London" in coordinators_mail.body
    )
    assert f"{deadline:%Y-%m-%d %H:%M} UTC" in coordinators_mail.body

    # One minute before the deadline: nothing.
    tick(deadline - dt.timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert not AlertEscalation.objects.filter(step__gt=0).exists()
    assert len(mail.outbox) == 1

    # One minute after: the clinician of this study, by e-mail and SMS; the next deadline is +120 min.
    output = tick(deadline + dt.timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert "escalated 1" in output
    escalation = AlertEscalation.objects.get(step=1)
    assert (escalation.audience, escalation.emails, escalation.texts) == ("clinician", 1, 1)
    assert escalation.deadline_at == deadline + dt.timedelta(minutes=120)
    assert [m.to for m in mail.outbox[1:]] == [[w["clinician"].email]]
    assert "ESCALATED" in mail.outbox[1].subject
    [clinician_text] = sms_gateway.state.texts(CLINICIAN_PHONE)
    assert "A-001" in clinician_text.body
    assert CLINICIAN_PHONE not in "".join(str(e.detail) for e in AuditEvent.objects.all())
    alert.refresh_from_db()
    assert (alert.step, alert.deadline_at, alert.ack_deadline_at) == (1, escalation.deadline_at, deadline)
    client.force_login(w["coordinator"])
    page = client.get(reverse("admin:measurements_alert_change", args=[alert.pk])).content.decode()
    held = page[page.index("data-holder>") :][:200]
    assert "designated clinician or PI (step 2 of the safety plan v1)" in held
    london_next = escalation.deadline_at.astimezone(ZoneInfo("Europe/London"))
    assert f"{london_next:%Y-%m-%d %H:%M}" in page[page.index("data-deadline>") :][:200]

    # The same instant again, and a later one before the clinician's deadline: nothing new.
    tick(deadline + dt.timedelta(minutes=1), django_capture_on_commit_callbacks)
    tick(deadline + dt.timedelta(minutes=100), django_capture_on_commit_callbacks)
    assert AlertEscalation.objects.filter(alert=alert).count() == 2
    assert len(mail.outbox) == 2
    assert AuditEvent.objects.filter(action="alert.escalated").count() == 1

    # Acknowledged by the clinician's step: no escalation ever after, however late tick runs.
    alert_acknowledge(
        actor=w["coordinator"], alert_id=alert.pk, note="Called: repeat 150/95.", outcome="contacted"
    )
    tick(deadline + dt.timedelta(days=3), django_capture_on_commit_callbacks)
    assert AlertEscalation.objects.filter(alert=alert).count() == 2
    assert len(mail.outbox) == 2
    event = AuditEvent.objects.get(action="alert.acknowledged")
    # Held by the clinician (step 1); "late" is by the clock, and the clock has not reached the deadline.
    assert (event.detail["outcome"], event.detail["step"], event.detail["late"]) == ("contacted", 1, False)


def test_a_late_tick_walks_the_chain_to_the_operators(world, django_capture_on_commit_callbacks):
    w = world
    severe(w, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    # Coordinators 240 min, clinician +120, operators +60: at +7 h both steps are due, in order.
    tick(alert.opened_at + dt.timedelta(hours=7), django_capture_on_commit_callbacks)
    steps = list(AlertEscalation.objects.filter(alert=alert).values_list("step", "audience", "deadline_at"))
    assert steps == [
        (0, "coordinators", alert.opened_at + dt.timedelta(minutes=240)),
        (1, "clinician", alert.opened_at + dt.timedelta(minutes=360)),
        (2, "operators", alert.opened_at + dt.timedelta(minutes=420)),
    ]
    assert [m.to for m in mail.outbox[1:]] == [[w["clinician"].email], [w["operator"].email]]
    # The chain is exhausted: nothing more, ever.
    tick(alert.opened_at + dt.timedelta(days=30), django_capture_on_commit_callbacks)
    assert AlertEscalation.objects.filter(alert=alert).count() == 3
    assert len(mail.outbox) == 3


def test_a_participant_who_withdrew_before_the_deadline_is_not_escalated(
    world, sms_gateway, django_capture_on_commit_callbacks
):
    w = world
    give_contact(w["participant"], phone=PARTICIPANT_PHONE)
    severe(w, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    Participant.objects.filter(pk=w["participant"].pk).update(status=Participant.Status.WITHDRAWN)
    mails, texts = len(mail.outbox), len(sms_gateway.state.texts())

    tick(alert.ack_deadline_at + dt.timedelta(minutes=1), django_capture_on_commit_callbacks)

    assert not AlertEscalation.objects.filter(step__gt=0).exists()
    assert not AuditEvent.objects.filter(action="alert.escalated").exists()
    assert (len(mail.outbox), len(sms_gateway.state.texts())) == (mails, texts)
    # A severe reading after the withdrawal: no alert, no message.
    Alert.objects.all().delete()
    severe(w, django_capture_on_commit_callbacks, when=now() - dt.timedelta(minutes=5))
    assert not Alert.objects.exists()
    assert Message.objects.filter(reason=Reason.SAFETY).count() == 1  # only the first one


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_escalate_the_step_once(world, settings):
    w = world
    with_commit = threading.Barrier(2)
    ingest(w["participant"], 1, 195, 100)
    alert = Alert.objects.get()
    at = alert.ack_deadline_at + dt.timedelta(minutes=1)
    results = []

    def worker():
        try:
            with_commit.wait()
            results.append(alert_escalate(alert_id=alert.pk, at=at))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r is not None for r in results) == [False, True]
    assert list(AlertEscalation.objects.filter(alert=alert).values_list("step", flat=True)) == [0, 1]
    assert AuditEvent.objects.filter(action="alert.escalated").count() == 1
    assert [m.to for m in mail.outbox if "ESCALATED" in m.subject] == [[w["clinician"].email]]


def test_a_re_measurement_that_clears_is_shown_beside_the_first_reading(
    world, client, django_capture_on_commit_callbacks
):
    w = world
    first = now() - dt.timedelta(minutes=40)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(w["participant"], 1, 192, 124, when=first)
        ingest(w["participant"], 2, 150, 95, when=first + dt.timedelta(minutes=6))
        ingest(w["participant"], 3, 140, 90, when=first + dt.timedelta(minutes=35))  # outside the 30 min
    alert = Alert.objects.get()
    assert alert.resolved_at is None  # still open: a clearing re-measurement hides nothing

    client.force_login(w["coordinator"])
    page = client.get(reverse("admin:measurements_alert_change", args=[alert.pk])).content.decode()
    assert "192/124 mmHg" in page
    assert "Re-measured 150/95 mmHg 6 min later: below the threshold" in page
    listing = client.get(reverse("admin:measurements_alert_changelist")).content.decode()
    assert "192/124 mmHg" in listing
    assert "Re-measured 150/95 mmHg 6 min later: below the threshold" in listing
    home = client.get(reverse("admin:index")).content.decode()
    assert "Re-measured 150/95 mmHg 6 min later: below the threshold" in home
    url = reverse("admin:measurements_monitoredparticipant_change", args=[w["participant"].pk])
    participant_page = client.get(url).content.decode()
    assert "192/124" in participant_page
    assert "Re-measured 150/95 mmHg 6 min later: below the threshold" in participant_page


def test_a_re_measurement_still_above_says_so(world, client, django_capture_on_commit_callbacks):
    w = world
    first = now() - dt.timedelta(minutes=20)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(w["participant"], 1, 192, 124, when=first)
        ingest(w["participant"], 2, 185, 110, when=first + dt.timedelta(minutes=5))
    alert = Alert.objects.get()
    client.force_login(w["coordinator"])
    page = client.get(reverse("admin:measurements_alert_change", args=[alert.pk])).content.decode()
    assert "Re-measured 185/110 mmHg 5 min later: still above the threshold" in page


def test_the_participant_page_shows_the_safety_message_at_the_top(
    world, client, django_capture_on_commit_callbacks
):
    w = world
    before = client.get(reverse("participant_status", args=[TOKEN])).content.decode()
    assert MESSAGE not in before
    severe(w, django_capture_on_commit_callbacks)
    page = client.get(reverse("participant_status", args=[TOKEN])).content.decode()
    assert page.index(MESSAGE) < page.index("Your participation</h1>")
    assert "data-safety-message" in page


def test_a_study_that_turned_participant_safety_messages_off_sends_nothing_but_shows_the_page(
    world, client, sms_gateway, django_capture_on_commit_callbacks
):
    w = world
    safety_plan_save(
        actor=w["coordinator"],
        study=w["study"],
        values={"severe_message": MESSAGE, "message_participant": False},
    )
    give_contact(w["participant"], phone=PARTICIPANT_PHONE)
    severe(w, django_capture_on_commit_callbacks)

    assert Alert.objects.get().safety_plan.version == 2
    assert not Message.objects.filter(reason=Reason.SAFETY).exists()
    assert sms_gateway.state.texts(PARTICIPANT_PHONE) == []
    assert MESSAGE in client.get(reverse("participant_status", args=[TOKEN])).content.decode()
    assert len(mail.outbox) == 1  # the coordinators are still told


def test_a_plan_that_keeps_quiet_hours_holds_the_message_until_they_end(
    world, sms_gateway, django_capture_on_commit_callbacks
):
    w = world
    safety_plan_save(actor=w["coordinator"], study=w["study"], values={"safety_ignores_quiet_hours": False})
    paris = ZoneInfo("Europe/Paris")
    local = now().astimezone(paris)
    quiet_end = (local + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    StudyMessaging.objects.create(
        study=w["study"], quiet_start=(local - dt.timedelta(hours=1)).time(), quiet_end=quiet_end.time()
    )
    give_contact(w["participant"], phone=PARTICIPANT_PHONE)
    severe(w, django_capture_on_commit_callbacks)

    message = Message.objects.get(reason=Reason.SAFETY)
    assert message.status == Message.Status.QUEUED
    assert message.due_at == quiet_end.astimezone(dt.UTC)
    assert sms_gateway.state.texts(PARTICIPANT_PHONE) == []


def test_acknowledging_needs_an_outcome_and_a_note(world, django_capture_on_commit_callbacks):
    w = world
    severe(w, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    with pytest.raises(ValidationError, match="Choose the outcome"):
        alert_acknowledge(actor=w["coordinator"], alert_id=alert.pk, note="Called.", outcome="")
    with pytest.raises(ValidationError, match="Write what was done"):
        alert_acknowledge(actor=w["coordinator"], alert_id=alert.pk, note=" ", outcome="no_action")
    with pytest.raises(PermissionDenied):
        alert_acknowledge(actor=w["south"], alert_id=alert.pk, note="x", outcome="contacted")
    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.outcome) == (None, "")
    alert_acknowledge(
        actor=w["coordinator"], alert_id=alert.pk, note="Known white-coat; GP aware.", outcome="no_action"
    )
    alert.refresh_from_db()
    assert (alert.outcome, alert.resolution) == ("no_action", Alert.Resolution.ACKNOWLEDGED)


def test_the_plan_is_versioned_validated_and_reads_as_approved_text(world):
    w = world
    with pytest.raises(ValidationError):
        safety_plan_save(actor=w["coordinator"], study=w["study"], values={"escalation": [{"to": "nobody"}]})
    with pytest.raises(PermissionDenied):
        safety_plan_save(actor=w["clinician"], study=w["study"], values={"ack_minutes": 60})
    assert SafetyPlan.objects.filter(study=w["study"]).count() == 1
    v2 = safety_plan_save(
        actor=w["coordinator"],
        study=w["study"],
        values={"low_systolic": 90, "working_hours_only": True, "approval_reference": "IRB-2026-014"},
    )
    assert v2.version == 2
    assert SafetyPlan.objects.get(study=w["study"], version=1).low_systolic is None
    text = approved_text(v2)
    assert "version 2 (approval IRB-2026-014)" in text
    assert "above 180 mmHg systolic or above 120 mmHg diastolic" in text
    assert "below 90 mmHg systolic" in text
    assert "4 h, counting only working hours (09:00–17:00, Monday to Friday, Europe/London)" in text
    assert AuditEvent.objects.filter(action="safety_plan.saved").count() == 2


def test_a_low_reading_raises_its_own_alert_under_a_low_threshold(world, django_capture_on_commit_callbacks):
    w = world
    safety_plan_save(actor=w["coordinator"], study=w["study"], values={"low_systolic": 90})
    severe(w, django_capture_on_commit_callbacks, sys=84, dia=55)
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.LOW_BP
    assert alert.deadline_at is not None


def test_the_study_page_shows_time_to_acknowledge_and_alerts_past_deadline(world, client):
    from measurements.monitoring.safety_figures import safety_figures

    w = world
    at = now()
    # Five acknowledged alerts, waited 10, 20, 30, 40 and 100 min, deadline 60 min after opening; one
    # still waiting 2 h after opening (past its deadline); one waiting inside its deadline.
    opened = at - dt.timedelta(days=2)
    for i, waited in enumerate([10, 20, 30, 40, 100]):
        p = ParticipantFactory(study=w["study"], site=w["participant"].site)
        Alert.objects.create(
            study=w["study"], participant=p, kind=Alert.Kind.CRISIS, episode_key=f"r{i}",
            safety_plan=w["plan"],
            opened_at=opened, ack_deadline_at=opened + dt.timedelta(minutes=60),
            deadline_at=opened + dt.timedelta(minutes=60),
            acknowledged_at=opened + dt.timedelta(minutes=waited), acknowledged_by=w["coordinator"],
            resolved_at=opened + dt.timedelta(minutes=waited), resolution=Alert.Resolution.ACKNOWLEDGED,
        )  # fmt: skip
    for key, age in (("late", 120), ("fresh", 30)):
        p = ParticipantFactory(study=w["study"], site=w["participant"].site)
        start = at - dt.timedelta(minutes=age)
        Alert.objects.create(
            study=w["study"], participant=p, kind=Alert.Kind.CRISIS, episode_key=key, safety_plan=w["plan"],
            opened_at=start, ack_deadline_at=start + dt.timedelta(minutes=60),
            deadline_at=start + dt.timedelta(minutes=60),
        )  # fmt: skip

    figures = safety_figures(Alert.objects.filter(study=w["study"]), at=at)
    # Median of 10, 20, 30, 40, 100 = 30; p90 (linear): position 0.9 × 4 = 3.6 → 40 + 0.6 × 60 = 76 min.
    assert (figures.alerts, figures.acknowledged) == (7, 5)
    assert (figures.median, figures.p90) == (dt.timedelta(minutes=30), dt.timedelta(minutes=76))
    assert (figures.past_deadline, figures.waiting_past_deadline) == (2, 1)

    client.force_login(w["coordinator"])
    page = client.get(reverse("admin:measurements_monitoring_study", args=[w["study"].slug])).content.decode()
    assert "median <strong data-median>30 min</strong>" in page
    assert "90th percentile <strong data-p90>1 h 16 min</strong>" in page
    assert "<strong data-past-deadline>2</strong>" in page
    # The worklist puts the one waiting past its deadline first.
    home = client.get(reverse("admin:index")).content.decode()
    late_code = Alert.objects.get(episode_key="late").participant.code
    fresh_code = Alert.objects.get(episode_key="fresh").participant.code
    assert home.index(late_code) < home.index(fresh_code)
    assert "Crisis, past deadline" in home
    fresh = Alert.objects.get(episode_key="fresh")
    due = fresh.deadline_at.astimezone(ZoneInfo("Europe/London"))
    assert f"acknowledge by {due:%Y-%m-%d %H:%M}" in home


def test_a_dry_run_reports_the_escalations_due_and_writes_nothing(world, django_capture_on_commit_callbacks):
    w = world
    severe(w, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    out = StringIO()
    at = alert.ack_deadline_at + dt.timedelta(minutes=1)
    call_command("tick", "--at", at.isoformat(), "--dry-run", stdout=out)
    assert "escalations due 1" in out.getvalue()
    assert list(AlertEscalation.objects.values_list("step", flat=True)) == [0]
    assert len(mail.outbox) == 1


def test_a_step_nobody_holds_goes_to_the_operators_rather_than_into_silence(
    world, django_capture_on_commit_callbacks
):
    w = world
    StudyMembership.objects.filter(user=w["clinician"]).update(safety_clinician=False)
    severe(w, django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    tick(alert.ack_deadline_at + dt.timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox[1:]] == [[w["operator"].email]]
    event = AuditEvent.objects.get(action="alert.escalated")
    assert (event.detail["to"], event.detail["fallback_to_operators"]) == ("clinician", True)
