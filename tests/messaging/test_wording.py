"""Message wording: allowed placeholders per reason, checks on save, versions and rendering."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from messaging import wording
from messaging.models import MessageTemplate, Reason
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def test_every_reason_has_defaults_on_both_channels_that_pass_their_own_check():
    for reason in Reason.values:
        for channel in ("sms", "email"):
            subject, body = wording.default_wording(reason, channel)
            wording.validate_template(reason, subject, body)
            assert body
            assert bool(subject) == (channel == "email")


def test_an_unknown_placeholder_is_named_in_the_error():
    with pytest.raises(ValidationError) as caught:
        wording.validate_template(Reason.PROMPT, "", "Hi {code}, measure at {window_start} {dose}")
    message = caught.value.messages[0]
    assert "Unknown placeholder {dose}" in message
    assert "{window_start}" in message  # the allowed ones are listed


def test_a_placeholder_allowed_for_one_reason_is_unknown_for_another():
    wording.validate_template(Reason.NO_DATA, "", "{days} days")
    with pytest.raises(ValidationError, match=r"\{days\}"):
        wording.validate_template(Reason.LOW_BATTERY, "", "{days} days")
    with pytest.raises(ValidationError, match=r"\{link\}"):
        wording.validate_template(Reason.WITHDRAWAL, "", "Come back: {link}")


@pytest.mark.parametrize(
    "text", ["{code.__class__}", "{code[0]}", "{code!r}", "{days:>10}", "open { brace", "{}"]
)
def test_attribute_index_format_spec_and_broken_braces_are_refused(text):
    with pytest.raises(ValidationError):
        wording.validate_template(Reason.NO_DATA, "", text)


def test_the_subject_is_checked_too():
    with pytest.raises(ValidationError, match=r"\{nope\}"):
        wording.validate_template(Reason.PROMPT, "{nope}", "fine")


def test_current_template_creates_version_one_from_the_default_once():
    study = StudyFactory()
    first = wording.current_template(study, Reason.PROMPT, "sms", "en")
    again = wording.current_template(study, Reason.PROMPT, "sms", "en")
    assert first.pk == again.pk
    assert (first.version, first.language) == (1, "en")
    assert first.body == wording.default_wording(Reason.PROMPT, "sms")[1]
    assert MessageTemplate.objects.filter(study=study).count() == 1


def test_current_template_returns_the_newest_version_and_starts_other_languages_from_their_default():
    study = StudyFactory()
    v1 = wording.current_template(study, Reason.NO_DATA, "email", "en")
    v2 = MessageTemplate.objects.create(
        study=study,
        reason=Reason.NO_DATA,
        channel="email",
        language="en",
        version=2,
        subject="S",
        body="B {days}",
    )
    assert wording.current_template(study, Reason.NO_DATA, "email", "en").pk == v2.pk
    french_default = wording.current_template(study, Reason.NO_DATA, "email", "fr")  # no French yet
    assert (french_default.language, french_default.version) == ("fr", 1)
    assert french_default.body.startswith("Bonjour,\n\nNous n'avons reçu aucune mesure")
    assert wording.current_template(study, Reason.NO_DATA, "email", "xx").pk == v2.pk  # unknown: English
    fr = MessageTemplate.objects.create(
        study=study,
        reason=Reason.NO_DATA,
        channel="email",
        language="fr",
        version=2,
        subject="S",
        body="Pas de mesures depuis {days} jours",
    )
    assert wording.current_template(study, Reason.NO_DATA, "email", "fr").pk == fr.pk
    assert v1.pk != v2.pk


@pytest.mark.django_db(transaction=True)
def test_two_racing_callers_get_the_same_version_one():
    study = StudyFactory()
    results: list[int] = []
    barrier = threading.Barrier(2)

    def call():
        try:
            barrier.wait()
            results.append(wording.current_template(study, Reason.RELINK, "sms", "en").pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert results[0] == results[1]
    assert MessageTemplate.objects.filter(study=study, reason=Reason.RELINK).count() == 1


def test_render_fills_placeholders_and_keeps_literal_braces():
    study = StudyFactory(name="BP Home", contact_phone="+44 20 7946 0000")
    template = MessageTemplate(
        study=study,
        reason=Reason.PROMPT,
        channel="email",
        language="en",
        version=1,
        subject="{study}: {window}",
        body="{{not a placeholder}} {window_start}-{window_end} {team_contact}",
    )
    context = {
        **wording.study_context(study),
        "window": "morning",
        "window_start": "07:00",
        "window_end": "09:00",
        "unused": "x",
    }
    assert wording.render(template, context) == (
        "BP Home: morning",
        "{not a placeholder} 07:00-09:00 +44 20 7946 0000",
    )


def test_render_refuses_to_send_a_half_filled_text():
    template = MessageTemplate(reason=Reason.PROMPT, channel="sms", body="at {window_start}", subject="")
    with pytest.raises(wording.MissingPlaceholder, match=r"\{window_start\}"):
        wording.render(template, {"study": "S"})
