"""Messages the portal sends on its own (not by a rule): the private link at enrollment and on
reissue, and the one confirmation at withdrawal — after which the contact details are erased."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Length
from django.urls import reverse
from django.utils import timezone

from cohorts.contacts import contact_erase
from cohorts.models import Participant, ParticipantContact

from . import wording
from .models import Message, Reason

logger = logging.getLogger(__name__)


def status_link_url(token: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{reverse('participant_status', args=[token])}"


def message_queue(
    *,
    participant: Participant,
    reason: str,
    dedupe_key: str,
    context: dict[str, object] | None = None,
    sent_by=None,
    due_at: dt.datetime | None = None,
) -> Message | None:
    """Render the study's current wording into one queued message in the participant's channel and
    language. None when the participant gave no way to reach them, or a message with this
    ``dedupe_key`` exists already (the unique key makes it at most once)."""
    contact = ParticipantContact.objects.filter(participant_id=participant.pk).first()
    if contact is None or not (contact.email or contact.phone):
        return None
    channel = contact.preferred_channel
    if channel == ParticipantContact.Channel.EMAIL and not contact.email:
        channel = ParticipantContact.Channel.SMS
    elif channel == ParticipantContact.Channel.SMS and not contact.phone:
        channel = ParticipantContact.Channel.EMAIL
    study = participant.study
    template = wording.current_template(study, reason, channel, contact.language)
    subject, body = wording.render(
        template,
        {**wording.study_context(study), "code": participant.code, **(context or {})},
    )
    due = due_at or timezone.now()
    try:
        with transaction.atomic():
            return Message.objects.create(
                study=study,
                participant=participant,
                reason=reason,
                dedupe_key=dedupe_key[:120],
                channel=channel,
                template=template,
                subject=subject[:200],
                body=body,
                local_day=due.astimezone(ZoneInfo(participant.timezone)).date(),
                due_at=due,
                sent_by=sent_by if getattr(sent_by, "is_authenticated", False) else None,
            )
    except IntegrityError:
        return None


def status_link_issued(participant_id: int, token: str) -> Message | None:
    """Queue the private link (enrollment or reissue) and send it now. The token travels only inside
    the encrypted message body: the task gets the message id."""
    from .tasks import send_message_task

    participant = Participant.objects.select_related("study").get(pk=participant_id)
    if participant.status == Participant.Status.WITHDRAWN:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    message = message_queue(
        participant=participant,
        reason=Reason.STATUS_LINK,
        dedupe_key=f"status_link:{digest}",
        context={"link": status_link_url(token)},
    )
    if message is not None:
        message_id = message.pk
        transaction.on_commit(lambda: send_message_task.delay(message_id))
    return message


def participant_withdrawn(participant_id: int) -> str:
    """The one withdrawal confirmation, then nothing ever again: queued messages are dropped, the
    rendered texts (which may hold the private link) and the contact details erased."""
    from .dispatch import send_message

    participant = Participant.objects.select_related("study").get(pk=participant_id)
    dropped = (
        Message.objects.filter(participant_id=participant_id, status=Message.Status.QUEUED)
        .exclude(reason=Reason.WITHDRAWAL)
        .update(
            status=Message.Status.OPTED_OUT,
            error="The participant has withdrawn.",
            status_changed_at=timezone.now(),
        )
    )
    confirmation = message_queue(participant=participant, reason=Reason.WITHDRAWAL, dedupe_key="withdrawal")
    outcome = None
    if confirmation is not None:
        outcome = send_message(confirmation.pk)
        if outcome == Message.Status.QUEUED:  # a transient error: no second try, the contact goes now
            Message.objects.filter(pk=confirmation.pk, status=Message.Status.QUEUED).update(
                status=Message.Status.FAILED, error="Not retried: the participant withdrew."
            )
    Message.objects.filter(participant_id=participant_id).update(body="")
    erased = contact_erase(participant_id=participant_id)
    logger.info("participant %s withdrawn: %s queued dropped, confirmation %s, contact erased: %s",
                participant_id, dropped, outcome or "none", erased)  # fmt: skip
    return outcome or "none"


#: How long the withdrawal task has to send its confirmation before the sweep erases regardless.
WITHDRAWAL_GRACE = dt.timedelta(minutes=15)


def withdrawn_contacts_erase() -> int:
    """Safety net for a lost withdrawal task: erase the contact details of every participant who
    withdrew more than WITHDRAWAL_GRACE ago and still has some (no confirmation is sent then)."""
    cutoff = timezone.now() - WITHDRAWAL_GRACE
    ids = list(
        ParticipantContact.objects.annotate(has_email=Length("email"))
        .filter(Q(has_email__gt=0) | ~Q(phone_lookup=""))
        .filter(participant__status=Participant.Status.WITHDRAWN, participant__withdrawn_at__lt=cutoff)
        .values_list("participant_id", flat=True)
    )
    for participant_id in ids:
        Message.objects.filter(participant_id=participant_id).update(body="")
        contact_erase(participant_id=participant_id)
    return len(ids)
