"""A coordinator's one-off message to one participant: a study template (one-off wording) or their
own text, checked like a template, previewed, then queued and sent at once (reason ``one_off``,
``sent_by`` the coordinator), audited without the text. Refused — with nothing created — for a
withdrawn participant or one who cannot be reached (no contact details, or opted out)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now

from cohorts.models import Participant, ParticipantContact
from cohorts.services import audit_record

from . import wording
from .links import participant_link
from .models import Message, MessageTemplate, Reason
from .scheduler.candidates import pick_channel


class OneOffRefused(Exception):
    pass


@dataclass(frozen=True)
class Draft:
    participant: Participant
    channel: str
    template: MessageTemplate | None  # None: the coordinator's own text
    subject: str
    body: str


def one_off_templates(participant: Participant, channel: str) -> list[MessageTemplate]:
    """The newest version of each one-off wording of the study on this channel (any language)."""
    rows = MessageTemplate.objects.filter(
        study_id=participant.study_id, reason=Reason.ONE_OFF, channel=channel
    ).order_by("language", "-version")
    newest: dict[str, MessageTemplate] = {}
    for row in rows:
        newest.setdefault(row.language, row)
    return list(newest.values())


def one_off_channel(participant: Participant) -> str:
    """The channel a one-off message would use; OneOffRefused says why there is none."""
    if participant.status == Participant.Status.WITHDRAWN:
        raise OneOffRefused(f"{participant.code} has withdrawn from the study: no message may be sent.")
    contact = ParticipantContact.objects.filter(participant=participant).first()
    channel = pick_channel(contact) if contact else None
    if channel is None:
        raise OneOffRefused(
            f"{participant.code} cannot be reached: no contact details, or they opted out of every channel."
        )
    return channel


def one_off_draft(*, participant: Participant, template: MessageTemplate | None, text: str = "") -> Draft:
    """Render the message as it would be sent; ValidationError for a text with unknown placeholders."""
    channel = one_off_channel(participant)
    if template is None:
        if not text.strip():
            raise ValidationError("Choose a template or write a text.")
        wording.validate_template(Reason.ONE_OFF, "", text)
        subject = wording.default_wording(Reason.ONE_OFF, channel)[0]
        template_for_render = MessageTemplate(study=participant.study, subject=subject, body=text)
    else:
        template_for_render = template
    context = {**wording.study_context(participant.study), "code": participant.code}
    context["link"] = participant_link(participant.pk)
    subject, body = wording.render(template_for_render, context)
    return Draft(participant, channel, template, subject, body)


def one_off_send(*, actor, draft: Draft) -> Message:
    """Queue the drafted message (sent at once after commit) and audit it."""
    from .tasks import send_message_task

    participant = draft.participant
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if one_off_channel(locked) != draft.channel:  # withdrawn or opted out since the preview
            raise OneOffRefused("The participant's contact details changed: preview the message again.")
        stamp = now()
        message = Message.objects.create(
            study_id=participant.study_id,
            participant=participant,
            reason=Reason.ONE_OFF,
            dedupe_key=f"one_off:{uuid.uuid4().hex}",
            channel=draft.channel,
            template=draft.template,
            subject=draft.subject,
            body=draft.body,
            local_day=stamp.astimezone(ZoneInfo(participant.timezone)).date(),
            due_at=stamp,
            sent_by=actor,
        )
        audit_record(
            actor=actor,
            action="messaging.one_off",
            participant=participant,
            target=participant.code,
            detail={
                "message": message.pk,
                "channel": draft.channel,
                "template_version": draft.template.version if draft.template else None,
            },
        )
        transaction.on_commit(lambda: send_message_task.delay(message.pk))
    return message
