"""The unsubscribe link of every e-mail (RFC 8058): POST unsubscribes at once — the one-click the
mail client sends, without CSRF token or login — and GET shows a page with a button (a link scanner
following the link must not unsubscribe anyone)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cohorts.models import ParticipantContact
from core.language import participant_language_activate

from .channels import unsubscribe_participant_id
from .optout import contact_opt_out


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    participant_id = unsubscribe_participant_id(token)
    contact = (
        ParticipantContact.objects.select_related("participant__study")
        .filter(participant_id=participant_id)
        .first()
        if participant_id is not None
        else None
    )
    if contact is None:
        return render(request, "messaging/unsubscribe.html", {"invalid": True}, status=404)
    participant_language_activate(request, contact.participant.language)
    study = contact.participant.study
    if request.method == "POST":
        contact_opt_out(contact=contact, channel=ParticipantContact.Channel.EMAIL, via="unsubscribe link")
        return render(request, "messaging/unsubscribe.html", {"study": study, "done": True})
    return render(
        request,
        "messaging/unsubscribe.html",
        {"study": study, "done": contact.email_opted_out_at is not None, "token": token},
    )
