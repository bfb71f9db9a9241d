"""A Spanish-speaking participant's severe reading: the safety message arrives in Spanish (the plan's
Spanish text inside the study's Spanish wording) and their page shows it in Spanish."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cohorts.contacts import ContactDetails, contact_save
from measurements.models.safety import DEFAULT_MESSAGES
from measurements.monitoring.safety import approved_text
from tests.measurements.test_safety_flow import MESSAGE, PARTICIPANT_PHONE, TOKEN, severe, world  # noqa: F401

pytestmark = pytest.mark.django_db


def test_the_safety_message_reaches_a_spanish_speaker_in_spanish(
    world,  # noqa: F811
    client,
    sms_gateway,
    django_capture_on_commit_callbacks,
):
    participant = world["participant"]
    contact_save(
        actor=None, participant=participant, via="participant",
        details=ContactDetails(phone=PARTICIPANT_PHONE, preferred_channel="sms", language="es"),
    )  # fmt: skip
    participant.refresh_from_db()
    assert participant.language == "es"  # the contact's language is the participant's

    severe(world, django_capture_on_commit_callbacks)

    spanish = DEFAULT_MESSAGES["es"]["severe"]
    [text] = sms_gateway.state.texts(PARTICIPANT_PHONE)
    assert text.body == f"Alpha BP: {spanish} Equipo del estudio: +441234"
    page = client.get(reverse("participant_status", args=[TOKEN])).content.decode()
    assert page.index(spanish) < page.index("Su participación</h1>")
    assert MESSAGE not in page
    # The IRB reads every language's text in the approved plan.
    assert f'Severe (Spanish): "{spanish}"' in approved_text(world["plan"])


def test_a_soft_flagged_readings_note_follows_the_participants_language():
    from measurements.models import Alert, SafetyPlan
    from measurements.models.safety import DEFAULT_SEVERE_MESSAGE
    from measurements.monitoring.safety_status import safety_message_for

    note = "flagged: pulse pressure above 100 — confirm with a repeat measurement"
    alert = Alert(
        kind=Alert.Kind.CRISIS, safety_plan=SafetyPlan(), detail={"flagged": note, "quality_flags": 64}
    )
    assert safety_message_for(alert, "en") == f"{DEFAULT_SEVERE_MESSAGE} (This reading was {note}.)"
    assert safety_message_for(alert, "es") == (
        f"{DEFAULT_MESSAGES['es']['severe']} (Esta medición se marcó: presión de pulso por encima de 100; "
        "confírmela con una nueva medición.)"
    )
