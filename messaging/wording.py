"""What messages say: the placeholders each reason may use, the default English wording, template
checks, the current (newest) version of a study's wording, and rendering.

Placeholders are ``{name}``; a literal brace is ``{{`` / ``}}``. Only plain names are allowed — no
attribute or index access, no format spec or conversion — so a saved template can never reach into
the objects it is rendered with.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cohorts.models import ParticipantContact, Study

from . import wording_i18n
from .models import MessageTemplate, Reason

Channel = ParticipantContact.Channel
DEFAULT_LANGUAGE = "en"
LANGUAGES = (("en", "English"), ("es", "Español"), ("fr", "Français"))

#: Every message may name the study, the participant's code, the team's contact and the private link.
COMMON = frozenset({"study", "code", "team_contact", "link"})
WINDOW = frozenset({"window", "window_start", "window_end"})

#: Reason → the placeholders its templates may use.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    Reason.STATUS_LINK: COMMON,
    Reason.PROMPT: COMMON | WINDOW,
    Reason.NO_DATA: COMMON | {"days"},
    Reason.SYNC_NUDGE: COMMON | WINDOW | {"days"},
    Reason.RELINK: COMMON,
    Reason.LOW_BATTERY: COMMON,
    Reason.WITHDRAWAL: COMMON - {"link"},
    Reason.ONE_OFF: COMMON,
    Reason.HELP: COMMON - {"link"},
    Reason.OPT_OUT: COMMON - {"link"},
    Reason.OPT_IN: COMMON - {"link"},
    Reason.SAFETY: (COMMON - {"link"}) | {"safety_message"},
}

_SMS: dict[str, str] = {
    Reason.STATUS_LINK: "{study}: your private study page is {link} - keep this link to yourself.",
    Reason.PROMPT: "{study}: time for your {window} blood pressure readings ({window_start}-{window_end}).",
    Reason.NO_DATA: (
        "{study}: we have not received readings for {days} days. Please take your readings with the "
        "monitor. Questions: {team_contact}"
    ),
    Reason.SYNC_NUDGE: (
        "{study}: your monitor has not uploaded recently. Please bring it near your Wi-Fi so your "
        "readings can be sent. No need to measure again."
    ),
    Reason.RELINK: "{study}: your monitor is no longer linked. Please link it again here: {link}",
    Reason.LOW_BATTERY: "{study}: your monitor's battery is low. Please charge it (micro-USB cable).",
    Reason.WITHDRAWAL: (
        "{study}: you have left the study. You will get no more messages. Questions: {team_contact}"
    ),
    Reason.ONE_OFF: "{study}: a message from the study team. Questions: {team_contact}",
    Reason.HELP: "{study}: for help contact the study team: {team_contact}. Reply STOP to stop texts.",
    Reason.OPT_OUT: "{study}: you will get no more texts. Reply START to receive them again.",
    Reason.OPT_IN: "{study}: texts are on again. Reply STOP to stop them.",
    Reason.SAFETY: "{study}: {safety_message} Study team: {team_contact}",
}

_EMAIL: dict[str, tuple[str, str]] = {
    Reason.STATUS_LINK: (
        "{study}: your private study page",
        "Hello,\n\nThank you for taking part in {study}. Your private study page is:\n\n{link}\n\n"
        "It shows your readings and how to reach the team. Keep this link to yourself.\n\n"
        "The study team\n{team_contact}",
    ),
    Reason.PROMPT: (
        "{study}: time for your {window} readings",
        "Hello,\n\nIt is time for your {window} blood pressure readings "
        "(between {window_start} and {window_end}).\n\nThe study team\n{team_contact}",
    ),
    Reason.NO_DATA: (
        "{study}: we have not received readings for {days} days",
        "Hello,\n\nWe have not received any readings from you for {days} days. Please take your "
        "readings with the monitor when you can.\n\nYour study page: {link}\n\n"
        "The study team\n{team_contact}",
    ),
    Reason.SYNC_NUDGE: (
        "{study}: please bring your monitor near Wi-Fi",
        "Hello,\n\nYour monitor has not uploaded recently, so readings you took may still be on it. "
        "Please bring it near your Wi-Fi so they can be sent. There is no need to measure again.\n\n"
        "The study team\n{team_contact}",
    ),
    Reason.RELINK: (
        "{study}: please link your monitor again",
        "Hello,\n\nYour monitor is no longer linked to the study, so your readings cannot reach us. "
        "Please link it again here:\n\n{link}\n\nThe study team\n{team_contact}",
    ),
    Reason.LOW_BATTERY: (
        "{study}: please charge your monitor",
        "Hello,\n\nYour monitor's battery is low. Please charge it with its micro-USB cable.\n\n"
        "The study team\n{team_contact}",
    ),
    Reason.WITHDRAWAL: (
        "{study}: you have left the study",
        "Hello,\n\nThis confirms that you have left {study}. You will receive no more messages from "
        "us.\n\nIf you have questions: {team_contact}\n\nThe study team",
    ),
    Reason.ONE_OFF: (
        "{study}: a message from the study team",
        "Hello,\n\nA message from the study team.\n\nThe study team\n{team_contact}",
    ),
    Reason.HELP: (
        "{study}: how to reach the study team",
        "Hello,\n\nYou can reach the study team at {team_contact}.\n\nThe study team",
    ),
    Reason.OPT_OUT: (
        "{study}: you have unsubscribed",
        "Hello,\n\nYou will receive no more e-mails from {study}.\n\nThe study team\n{team_contact}",
    ),
    Reason.OPT_IN: (
        "{study}: messages are on again",
        "Hello,\n\nYou will receive messages from {study} again.\n\nThe study team\n{team_contact}",
    ),
    Reason.SAFETY: (
        "{study}: about your last blood pressure reading",
        "Hello,\n\n{safety_message}\n\nThe study team\n{team_contact}",
    ),
}


def default_wording(reason: str, channel: str, language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """The default ``(subject, body)`` of a reason on a channel in a language (SMS has no subject);
    English for a language the portal has no wording in."""
    if channel == Channel.SMS:
        return "", wording_i18n.SMS.get(language, _SMS)[reason]
    return wording_i18n.EMAIL.get(language, _EMAIL)[reason]


def placeholders_in(text: str) -> list[str]:
    """The placeholder names a text uses, in order; ValidationError if the text is not well formed."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(
            "The text has an unmatched brace. Write placeholders as {name}, a literal brace as {{ or }}."
        ) from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValidationError(
                "“{%(field)s}” is not a placeholder: write a plain name such as {study}.",
                params={
                    "field": field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                },
                code="bad_placeholder",
            )
        names.append(field)
    return names


def validate_template(reason: str, subject: str, body: str) -> None:
    """Raise ValidationError naming any placeholder the reason does not allow (or a malformed text)."""
    allowed = PLACEHOLDERS[reason]
    unknown: list[str] = []
    for text in (subject, body):
        for name in placeholders_in(text):
            if name not in allowed and name not in unknown:
                unknown.append(name)
    if unknown:
        raise ValidationError(
            "Unknown placeholder %(unknown)s. This message may use: %(allowed)s.",
            params={
                "unknown": ", ".join("{" + name + "}" for name in unknown),
                "allowed": ", ".join("{" + name + "}" for name in sorted(allowed)),
            },
            code="unknown_placeholder",
        )


def current_template(study: Study, reason: str, channel: str, language: str) -> MessageTemplate:
    """The newest version of the study's wording for this reason, channel and language.

    A language without any wording of the study gets version 1 from the default text in that
    language (created once, also when two callers race); a language the portal has no default
    wording in falls back to English.
    """
    newest = (
        MessageTemplate.objects.filter(study=study, reason=reason, channel=channel, language=language)
        .order_by("-version")
        .first()
    )
    if newest is not None:
        return newest
    if language not in dict(LANGUAGES):
        return current_template(study, reason, channel, DEFAULT_LANGUAGE)
    subject, body = default_wording(reason, channel, language)
    try:
        with transaction.atomic():
            template, _created = MessageTemplate.objects.get_or_create(
                study=study,
                reason=reason,
                channel=channel,
                language=language,
                version=1,
                defaults={"subject": subject, "body": body},
            )
    except IntegrityError:  # another caller created version 1 between our read and our insert
        template = MessageTemplate.objects.get(
            study=study, reason=reason, channel=channel, language=language, version=1
        )
    return template


def team_contact(study: Study) -> str:
    """How a participant reaches the study team, as the messages say it."""
    return " / ".join(part for part in (study.contact_phone, study.contact_email) if part) or study.name


def study_context(study: Study) -> dict[str, str]:
    """The placeholders every message of a study shares (the caller adds code, link, window…)."""
    return {"study": study.name, "team_contact": team_contact(study)}


class MissingPlaceholder(ValueError):
    """A template uses a placeholder the caller did not provide: nothing half-filled is sent."""


def render(template: MessageTemplate, context: Mapping[str, object]) -> tuple[str, str]:
    """``(subject, body)`` with the placeholders filled from ``context`` (extra keys are ignored)."""
    return _fill(template.subject, context), _fill(template.body, context)


def _fill(text: str, context: Mapping[str, object]) -> str:
    names = placeholders_in(text)
    missing = [name for name in names if name not in context]
    if missing:
        raise MissingPlaceholder("No value for " + ", ".join("{" + name + "}" for name in missing))
    return text.format_map({name: context[name] for name in names})
