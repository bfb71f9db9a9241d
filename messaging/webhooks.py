"""Twilio's webhooks: delivery status callbacks and inbound texts, both signed with
``X-Twilio-Signature`` (HMAC of PORTAL_BASE_URL + path and the form fields, keyed with the auth
token). A request without a valid signature is refused with 403 and changes nothing."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from .inbound import inbound_receive
from .receipts import receipt_receive

logger = logging.getLogger(__name__)


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
    if sid:
        receipt_receive(
            sid, request.POST.get("MessageStatus", "").lower()[:16], request.POST.get("ErrorCode", "")[:10]
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
