"""Twilio's webhooks: delivery status callbacks and inbound texts, both signed with
``X-Twilio-Signature`` (HMAC of PORTAL_BASE_URL + path and the form fields, keyed with the auth
token). A request without a valid signature is refused with 403 and changes nothing."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from cohorts.models import ParticipantContact

from .inbound import inbound_receive
from .models import Message

logger = logging.getLogger(__name__)
Status = Message.Status

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


def signature_valid(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    url = f"{settings.PORTAL_BASE_URL}{request.get_full_path()}"
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, request.POST, signature)


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    if not signature_valid(request):
        return HttpResponseForbidden("Invalid signature.")
    sid = request.POST.get("MessageSid", "")[:64]
    status = PROVIDER_STATUS.get(request.POST.get("MessageStatus", "").lower())
    if not sid or status is None:
        return HttpResponse(status=204)
    stamp = timezone.now()
    messages = Message.objects.filter(provider_id=sid, channel=ParticipantContact.Channel.SMS)
    if status == Status.DELIVERED:
        changed = messages.filter(status__in=[Status.SENT, Status.SENDING]).update(
            status=Status.DELIVERED, delivered_at=stamp, status_changed_at=stamp
        )
        if changed:
            ParticipantContact.objects.filter(participant__messages__provider_id=sid).update(sms_failures=0)
    elif status == Status.FAILED:
        code = request.POST.get("ErrorCode", "")[:10]
        changed = messages.filter(status__in=[Status.SENT, Status.SENDING]).update(
            status=Status.FAILED, error=f"Not delivered (Twilio {code or 'error'})", status_changed_at=stamp
        )
        if changed:
            ParticipantContact.objects.filter(participant__messages__provider_id=sid).update(
                sms_failures=F("sms_failures") + 1
            )
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    if not signature_valid(request):
        return HttpResponseForbidden("Invalid signature.")
    sid = request.POST.get("MessageSid", "")
    if not sid:
        return HttpResponse("Missing MessageSid.", status=400)
    outcome = inbound_receive(
        from_number=request.POST.get("From", ""), body=request.POST.get("Body", ""), provider_id=sid
    )
    reply = f"<Message>{escape(outcome.reply)}</Message>" if outcome.reply else ""
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>', content_type="text/xml"
    )
