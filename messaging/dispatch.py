"""Sending what is queued: every ``Message`` whose ``due_at`` has come, exactly once.

A message is *claimed* by one conditional UPDATE (queued → sending, attempts + 1) before anything
leaves: of two workers (or a beat sweep racing an immediate send) exactly one claims it, the other
moves on. At send time the participant's state is read again — withdrawn, opted out of the channel,
no reminders opt-in — and such a message ends as ``opted_out`` with nothing sent. Transient provider
errors put the message back in the queue with a growing delay, up to ``MESSAGING_MAX_ATTEMPTS``; a
permanent error fails it and counts against the number/address (flagged for the coordinator after
``MESSAGING_FLAG_AFTER_FAILURES``). A rule's reminder still queued ``MESSAGING_STALE_AFTER_MINUTES``
after it was due — a replayed past week (``tick --at``), a dispatcher that was down — is never sent
late: it ends as ``expired``, the reason in the delivery log. Sends are paced per channel across every process
(``MESSAGING_SMS_PER_SECOND``, ``MESSAGING_EMAIL_PER_SECOND``) through the shared cache.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from cohorts.models import Participant, ParticipantContact
from core import metrics

from . import channels, receipts
from .models import Message, Reason
from .optout import contact_opt_out

logger = logging.getLogger(__name__)

Status = Message.Status
Channel = ParticipantContact.Channel
#: Reasons only sent to a participant who opted in to reminders; the others are transactional
#: (their private link, the withdrawal confirmation, replies to their own texts, the team's one-offs).
REMINDER_REASONS = frozenset(
    {Reason.PROMPT, Reason.NO_DATA, Reason.SYNC_NUDGE, Reason.RELINK, Reason.LOW_BATTERY}
)
#: A message claimed this long ago and still "sending" was interrupted (worker killed mid-send).
INTERRUPTED_AFTER = dt.timedelta(minutes=10)
DISPATCH_BATCH = 500


def dispatch_due(now: dt.datetime | None = None) -> int:
    """Send every queued message due at ``now`` (default: the current time); returns how many
    left (sent or handed to the provider). Safe to run concurrently with itself."""
    now = now or timezone.now()
    fail_interrupted()
    stale_expire()
    receipts.pending_purge()
    sent = 0
    while True:
        ids = list(
            Message.objects.filter(status=Status.QUEUED, due_at__lte=now)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        outcomes = [send_message(pk, now=now) for pk in ids]
        sent += sum(1 for outcome in outcomes if outcome in (Status.SENT, Status.DELIVERED))
        if len(ids) < DISPATCH_BATCH or not any(outcome is not None for outcome in outcomes):
            return sent


def fail_interrupted() -> int:
    """Messages whose send was interrupted: whether they left is unknown, so they are not resent."""
    return Message.objects.filter(
        status=Status.SENDING, status_changed_at__lt=timezone.now() - INTERRUPTED_AFTER
    ).update(
        status=Status.FAILED,
        error="Interrupted while sending: delivery unknown, not resent.",
        status_changed_at=timezone.now(),
    )


def stale_after() -> dt.timedelta:
    return dt.timedelta(minutes=settings.MESSAGING_STALE_AFTER_MINUTES)


def stale_reason() -> str:
    minutes = settings.MESSAGING_STALE_AFTER_MINUTES
    return f"Not sent: still queued {minutes} min after it was due (replayed or late); never sent late."


def stale_expire() -> int:
    """Expire every rule reminder queued for longer than the bound after it was due (real time, not
    the instant a replay decided at). Transactional messages (private link, withdrawal, replies,
    the team's one-offs) are not reminders of a moment: they are still sent."""
    stamp = timezone.now()
    return Message.objects.filter(
        status=Status.QUEUED, reason__in=REMINDER_REASONS, due_at__lt=stamp - stale_after()
    ).update(status=Status.EXPIRED, error=stale_reason(), status_changed_at=stamp)


def _claim(pk: int, now: dt.datetime) -> bool:
    return bool(
        Message.objects.filter(pk=pk, status=Status.QUEUED, due_at__lte=now).update(
            status=Status.SENDING, attempts=F("attempts") + 1, status_changed_at=timezone.now()
        )
    )


def _finish(message: Message, status: str, **fields) -> None:
    stamp = timezone.now()
    updated = Message.objects.filter(pk=message.pk, status=Status.SENDING).update(
        status=status, status_changed_at=stamp, **fields
    )
    if updated and status != Status.QUEUED:
        metrics.inc("portal_messages", channel=message.channel, status=status)


def send_message(pk: int, *, now: dt.datetime | None = None) -> str | None:
    """Claim and send one message; returns its new status, or None if it was not this caller's
    to send (not queued, not due, or claimed by another worker)."""
    if not _claim(pk, now or timezone.now()):
        return None
    message = Message.objects.select_related("participant", "participant__contact").get(pk=pk)
    participant = message.participant
    contact: ParticipantContact | None = getattr(participant, "contact", None)
    refusal = _refusal(message, participant, contact)
    if refusal is not None:
        status, why = refusal
        _finish(message, status, error=why)
        return status
    assert contact is not None  # _refusal checked it
    outgoing = channels.Outgoing(
        to=contact.email if message.channel == Channel.EMAIL else contact.phone,
        subject=message.subject,
        body=message.body,
        participant_id=participant.pk,
    )
    _pace(message.channel)
    try:
        if message.channel == Channel.EMAIL:
            provider_id, status = channels.send_email(outgoing), Status.SENT
        else:
            provider_id, _provider_status = channels.send_sms(outgoing)
            status = Status.SENT
    except channels.RecipientOptedOut as exc:
        contact_opt_out(contact=contact, channel=message.channel, via="provider")
        _finish(message, Status.OPTED_OUT, error=str(exc))
        return Status.OPTED_OUT
    except channels.PermanentSendError as exc:
        _count_failure(contact, message.channel, flag=exc.bad_address)
        status = Status.BOUNCED if exc.bounced else Status.FAILED
        _finish(message, status, error=str(exc))
        logger.warning("message %s: %s (%s)", message.pk, status, exc)
        return status
    except channels.TransientSendError as exc:
        return _retry_later(message, exc, contact)
    _finish(message, status, provider_id=provider_id, sent_at=timezone.now(), error="")
    if message.channel == Channel.SMS:  # a receipt that overtook the send's answer
        receipts.pending_apply(provider_id)
    return status


def _refusal(
    message: Message, participant: Participant, contact: ParticipantContact | None
) -> tuple[str, str] | None:
    """Why this message must not be sent now, read at send time: (status, reason) or None."""
    if participant.status == Participant.Status.WITHDRAWN and message.reason != Reason.WITHDRAWAL:
        return Status.OPTED_OUT, "The participant has withdrawn."
    if contact is None:
        return Status.FAILED, "No contact details."
    if message.channel == Channel.EMAIL:
        if contact.email_opted_out_at is not None:
            return Status.OPTED_OUT, "Unsubscribed from e-mail."
        if not contact.email:
            return Status.FAILED, "No e-mail address."
    else:
        if contact.sms_opted_out_at is not None:
            return Status.OPTED_OUT, "Replied STOP to texts."
        if not contact.phone:
            return Status.FAILED, "No mobile number."
    if message.reason in REMINDER_REASONS and not contact.reminders_opt_in:
        return Status.OPTED_OUT, "Did not opt in to reminders."
    if message.reason in REMINDER_REASONS and message.due_at < timezone.now() - stale_after():
        return Status.EXPIRED, stale_reason()
    return None


def _retry_later(message: Message, exc: Exception, contact: ParticipantContact) -> str:
    attempts = message.attempts  # loaded after the claim: counts this attempt
    if attempts >= settings.MESSAGING_MAX_ATTEMPTS:
        _count_failure(contact, message.channel, flag=False)
        _finish(message, Status.FAILED, error=f"Gave up after {attempts} attempts: {exc}"[:255])
        logger.warning("message %s: failed after %s attempts (%s)", message.pk, attempts, exc)
        return Status.FAILED
    delay = dt.timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))
    _finish(message, Status.QUEUED, due_at=timezone.now() + delay, error=str(exc)[:255])
    logger.info("message %s: %s, retry in %s s", message.pk, exc, int(delay.total_seconds()))
    return Status.QUEUED


def _count_failure(contact: ParticipantContact, channel: str, *, flag: bool) -> None:
    """One more failed message for the number/address; ``flag``: it is unusable, flag it now."""
    field = "email_failures" if channel == Channel.EMAIL else "sms_failures"
    value = F(field) + 1
    if flag:
        value = Greatest(value, settings.MESSAGING_FLAG_AFTER_FAILURES)
    ParticipantContact.objects.filter(pk=contact.pk).update(**{field: value})


def _pace(channel: str) -> None:
    """Wait for this channel's next free send slot, shared by every process through the cache."""
    rate = (
        settings.MESSAGING_EMAIL_PER_SECOND if channel == Channel.EMAIL else settings.MESSAGING_SMS_PER_SECOND
    )
    interval = 1.0 / rate
    while True:
        slot = int(time.time() / interval)
        if cache.add(f"messaging:pace:{channel}:{slot}", 1, timeout=int(interval) + 2):
            return
        time.sleep(interval - (time.time() % interval) + 0.001)
