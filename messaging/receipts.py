"""Delivery receipts (Twilio status callbacks) applied to the delivery log, whatever the order.

Twilio may call back before the portal has read the answer to its send request, i.e. before the
message row holds its MessageSid. Such a receipt is kept (``PendingReceipt``) and applied when the
sid is recorded. Both sides first write (the receipt, the sid) and then look for the other under a
row lock, so however the two race, one of them applies the receipt, and applying twice changes
nothing (each transition is guarded by the status it starts from).

A permanent SMS failure — ``undelivered``/``failed`` with an error code saying the number cannot
receive texts (30003 unreachable, 30005 unknown, 30006 landline) — marks the message ``bounced``;
every failure counts against the number, and an unknown number or a landline is flagged at once
(``MESSAGING_FLAG_AFTER_FAILURES``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from cohorts.models import ParticipantContact

from .models import Message, PendingReceipt

Status = Message.Status
SMS = ParticipantContact.Channel.SMS

#: Twilio's MessageStatus → ours. queued/sending/sent/accepted are all "handed over" (sent).
PROVIDER_STATUS = {
    "accepted": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
}
#: Twilio error codes of a text that bounced: the handset is unreachable (30003), the number
#: unknown to the carrier (30005) or a landline (30006). The last two flag the number at once.
BOUNCE_CODES = {"30003": "unreachable handset", "30005": "unknown number", "30006": "landline"}
UNUSABLE_CODES = frozenset({"30005", "30006"})
#: A receipt whose sid never appears (another application on the account, a lost send) goes then.
PENDING_KEPT = dt.timedelta(days=1)


def receipt_apply(sid: str, provider_status: str, error_code: str = "") -> bool:
    """Apply one receipt to the message with this sid; False when no message holds it (yet)."""
    status = PROVIDER_STATUS.get(provider_status)
    message = Message.objects.filter(provider_id=sid, channel=SMS).only("pk", "participant_id").first()
    if message is None:
        return False
    if status not in (Status.DELIVERED, Status.FAILED):
        return True  # "sent" and the like: the send already said so
    stamp = timezone.now()
    open_ = Message.objects.filter(pk=message.pk, status__in=[Status.SENT, Status.SENDING])
    contact = ParticipantContact.objects.filter(participant_id=message.participant_id)
    if status == Status.DELIVERED:
        if open_.update(status=Status.DELIVERED, delivered_at=stamp, status_changed_at=stamp):
            contact.update(sms_failures=0)
        return True
    bounce = BOUNCE_CODES.get(error_code)
    if bounce:
        changed = open_.update(
            status=Status.BOUNCED, error=f"Bounced: {bounce} (Twilio {error_code})", status_changed_at=stamp
        )
    else:
        changed = open_.update(
            status=Status.FAILED,
            error=f"Not delivered (Twilio {error_code or 'error'})",
            status_changed_at=stamp,
        )
    if changed:
        failures = F("sms_failures") + 1
        if error_code in UNUSABLE_CODES:
            failures = Greatest(failures, settings.MESSAGING_FLAG_AFTER_FAILURES)
        contact.update(sms_failures=failures)
    return True


def receipt_receive(sid: str, provider_status: str, error_code: str = "") -> None:
    """A status callback: applied now, or kept until the send records the sid."""
    if PROVIDER_STATUS.get(provider_status) not in (Status.DELIVERED, Status.FAILED):
        return  # "sent" and the like say nothing the send's answer does not
    if receipt_apply(sid, provider_status, error_code):
        return
    PendingReceipt.objects.create(provider_id=sid, provider_status=provider_status, error_code=error_code)
    pending_apply(sid)  # the send may have recorded the sid meanwhile


def pending_apply(sid: str) -> int:
    """Apply the receipts kept for ``sid`` in arrival order, if a message holds it now; returns how
    many were applied (and deleted)."""
    if not sid:
        return 0
    with transaction.atomic():
        pending = list(PendingReceipt.objects.select_for_update().filter(provider_id=sid))
        if not pending or not Message.objects.filter(provider_id=sid, channel=SMS).exists():
            return 0
        for receipt in pending:
            receipt_apply(sid, receipt.provider_status, receipt.error_code)
        PendingReceipt.objects.filter(pk__in=[r.pk for r in pending]).delete()
    return len(pending)


def pending_purge() -> int:
    return PendingReceipt.objects.filter(received_at__lt=timezone.now() - PENDING_KEPT).delete()[0]
