"""The default wording and the safety plan's participant messages exist in every language, use only
the placeholders their reason allows, and the participant gets the one in their language."""

from __future__ import annotations

import pytest

from measurements.models import SafetyPlan
from measurements.models.safety import DEFAULT_MESSAGES, DEFAULT_SEVERE_MESSAGE
from messaging import wording
from messaging.models import Reason


@pytest.mark.parametrize("language", ["es", "fr"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_every_reason_has_a_default_wording_in_the_language_with_allowed_placeholders(language, channel):
    for reason in Reason.values:
        subject, body = wording.default_wording(reason, channel, language)
        english = wording.default_wording(reason, channel, "en")
        assert body != english[1], (reason, channel, language)  # really translated
        wording.validate_template(reason, subject, body)  # raises on a placeholder the reason lacks
        # The message says the same things: every placeholder of the translation is in the English.
        used = set(wording.placeholders_in(subject + body))
        assert used <= set(wording.placeholders_in(english[0] + english[1])), (reason, used)


def test_a_language_without_default_wording_gets_english():
    english = wording.default_wording(Reason.PROMPT, "sms")
    assert wording.default_wording(Reason.PROMPT, "sms", "de") == english


def test_the_safety_message_goes_in_the_participants_language_and_english_when_blank():
    plan = SafetyPlan(severe_message_fr="")
    assert plan.participant_message(low=False, language="es") == DEFAULT_MESSAGES["es"]["severe"]
    assert plan.participant_message(low=True, language="es").startswith(
        "Su última medición de presión arterial fue baja."
    )
    assert plan.participant_message(low=False, language="fr") == DEFAULT_SEVERE_MESSAGE  # blank: English
    assert plan.participant_message(low=False, language="en") == DEFAULT_SEVERE_MESSAGE
