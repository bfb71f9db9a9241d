"""A real severe reading is never silenced by a soft plausibility rule (`measurements.quality`): the
safety plan checks soft-flagged readings (pulse pressure < 20 or > 100, pulse out of range) and says
they were flagged; hard-flagged ones (impossible values, e.g. 161/1) raise nothing. Every ingestion
path: the API page (COPY, PostgreSQL), its reference path, the row upsert."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils.timezone import now

from cohorts.models import Role
from measurements import quality
from measurements.models import Alert, BloodPressureReading
from measurements.monitoring.safety import safety_plan_save
from measurements.monitoring.worklist import worklist_items
from measurements.readings.parse import parse_groups
from measurements.readings.store import _reference, readings_store_api_page
from measurements.readings.upsert import readings_upsert_api
from messaging.models import Message, Reason
from tests.factories import MembershipFactory, ParticipantFactory, StudyFactory
from tests.fixtures.messaging import give_contact
from tests.measurements.test_parsing_and_upsert import bp_group

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"
MESSAGE = "Sit quietly for 5 minutes and measure again. Chest pain or trouble speaking: call 112."
LOW_MESSAGE = "Your reading is low. Sit down and drink some water."
PP_HIGH_NOTE = "flagged: pulse pressure above 100 — confirm with a repeat measurement"
PATHS = ("page", "reference", "upsert")


@pytest.fixture
def world():
    study = StudyFactory(slug="alpha", name="Alpha BP", contact_phone="+441234")
    participant = ParticipantFactory(
        study=study, code="A-001", timezone="UTC", start_date=now().date() - dt.timedelta(days=5)
    )
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    # severe: systolic > 180 or diastolic > 120 (the defaults); low: systolic < 90
    plan = safety_plan_save(
        actor=coordinator,
        study=study,
        values={"severe_message": MESSAGE, "low_systolic": 90, "low_message": LOW_MESSAGE},
    )
    give_contact(participant, phone=PHONE, opt_in=False)  # safety messages are not reminders
    return {"participant": participant, "coordinator": coordinator, "plan": plan}


def store(path: str, participant, sys: int, dia: int, pulse: int = 72) -> None:
    stamp = int((now() - dt.timedelta(hours=1)).timestamp())
    group = bp_group(grpid=1, sys=(sys, 0), dia=(dia, 0), pulse=(pulse, 0))
    group.update(date=stamp, created=stamp, modified=stamp)
    if path == "page":
        readings_store_api_page(participant_id=participant.pk, groups=[group], source_timezone="UTC")
    elif path == "reference":
        _reference(participant.pk, [group], "UTC", None)
    else:
        readings_upsert_api(participant_id=participant.pk, readings=parse_groups([group]).readings)


def test_rules_split_hard_and_soft():
    hard = {r.code for r in quality.RULES if r.hard}
    assert hard == {
        "systolic_above_300",
        "systolic_below_50",
        "diastolic_above_160",
        "diastolic_below_20",
        "systolic_not_above_diastolic",
    }
    assert quality.HARD_FLAGS == 1 + 2 + 4 + 8 + 16
    assert quality.SOFT_FLAGS == 32 + 64 + 128
    flags = (0, 64, 32 + 128, 8 + 64, 16 + 32)
    assert [quality.alertable(f) for f in flags] == [True, True, True, False, False]


@pytest.mark.parametrize("path", PATHS)
def test_220_110_raises_the_severe_alert_and_the_participant_message_saying_it_was_flagged(
    path, world, sms_gateway, django_capture_on_commit_callbacks
):
    participant = world["participant"]
    with django_capture_on_commit_callbacks(execute=True):
        store(path, participant, 220, 110)

    reading = BloodPressureReading.objects.get(participant=participant)
    assert reading.quality_flags == 64  # 220 − 110 = 110 > 100: flagged, still out of averages
    alert = Alert.objects.get(participant=participant)
    assert (alert.kind, alert.safety_plan) == (Alert.Kind.CRISIS, world["plan"])
    assert alert.detail["flagged"] == PP_HIGH_NOTE
    assert alert.detail["value"].endswith(f"UTC — {PP_HIGH_NOTE}")

    # The participant: the plan's message at once, then what was flagged.
    [text] = sms_gateway.state.texts(PHONE)
    assert text.body == f"Alpha BP: {MESSAGE} (This reading was {PP_HIGH_NOTE}.) Study team: +441234"
    assert Message.objects.get(reason=Reason.SAFETY).status == Message.Status.SENT
    # The coordinators' e-mail and the worklist say it too.
    [coordinators_mail] = mail.outbox
    assert PP_HIGH_NOTE in coordinators_mail.body
    [item] = worklist_items(user=world["coordinator"], limit=10)
    [line] = item.alerts
    assert (line.bp_value, line.flagged) == ("220/110 mmHg", PP_HIGH_NOTE)


@pytest.mark.parametrize("path", PATHS)
def test_195_90_isolated_systolic_hypertension_is_severe(
    path, world, sms_gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        store(path, world["participant"], 195, 90)
    assert BloodPressureReading.objects.get().quality_flags == 64  # pulse pressure 105
    alert = Alert.objects.get()
    assert (alert.kind, Decimal(alert.detail["systolic"]), Decimal(alert.detail["diastolic"])) == (
        Alert.Kind.CRISIS,
        195,
        90,
    )
    assert len(sms_gateway.state.texts(PHONE)) == 1


@pytest.mark.parametrize("path", PATHS)
def test_161_1_hard_flagged_raises_nothing(path, world, sms_gateway, django_capture_on_commit_callbacks):
    """161/1 (a garbled entry: diastolic below 20) breaks a hard rule — and a soft one, which does not
    make it checked."""
    with django_capture_on_commit_callbacks(execute=True):
        store(path, world["participant"], 161, 1)
    assert BloodPressureReading.objects.get().quality_flags == 8 + 64
    assert not Alert.objects.exists()
    assert not Message.objects.exists()
    assert sms_gateway.state.texts(PHONE) == []
    assert mail.outbox == []


@pytest.mark.parametrize("path", PATHS)
def test_an_impossible_severe_reading_raises_nothing(path, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        store(path, world["participant"], 310, 150)  # systolic above 300 (hard) and pulse pressure 160
    assert BloodPressureReading.objects.get().quality_flags == 1 + 64
    assert not Alert.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("sys", "dia", "pulse", "flags"),
    [
        (170, 65, 72, 64),  # pulse pressure 105, below the severe thresholds
        (118, 113, 72, 32),  # pulse pressure 5, above the low threshold
        (130, 80, 250, 128),  # pulse out of range
    ],
)
def test_a_soft_flagged_reading_that_is_neither_severe_nor_low_raises_nothing(
    world, sys, dia, pulse, flags, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        store("page", world["participant"], sys, dia, pulse)
    assert BloodPressureReading.objects.get().quality_flags == flags
    assert not Alert.objects.exists()
    assert not Message.objects.exists()
    assert mail.outbox == []


def test_a_soft_flagged_pulse_on_a_severe_reading_still_alerts(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        store("page", world["participant"], 200, 110, pulse=250)  # pulse pressure 90: only the pulse
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.CRISIS
    assert alert.detail["flagged"] == "flagged: pulse out of range — confirm with a repeat measurement"


def test_a_soft_flagged_low_reading_raises_the_low_alert(
    world, sms_gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        store("page", world["participant"], 85, 70)  # below 90; pulse pressure 15 < 20
    alert = Alert.objects.get()
    note = "flagged: pulse pressure below 20 — confirm with a repeat measurement"
    assert (alert.kind, alert.detail["flagged"]) == (Alert.Kind.LOW_BP, note)
    [text] = sms_gateway.state.texts(PHONE)
    assert text.body == f"Alpha BP: {LOW_MESSAGE} (This reading was {note}.) Study team: +441234"


def test_a_plausible_severe_reading_is_not_called_flagged(
    world, sms_gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        store("page", world["participant"], 190, 100)
    alert = Alert.objects.get()
    assert "flagged" not in alert.detail
    [text] = sms_gateway.state.texts(PHONE)
    assert text.body == f"Alpha BP: {MESSAGE} Study team: +441234"
