"""The page a message's link opens: the participant's way back to linking their monitor."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from cohorts import enrollment
from cohorts.models import Participant
from cohorts.views import ENROLLMENT_SESSION_KEY, STATUS_TOKEN_SESSION_KEY
from core.language import participant_language_activate

from .links import participant_from_link_token

BROKEN = (
    Participant.LinkStatus.NEEDS_REAUTH,
    Participant.LinkStatus.REVOKED,
    Participant.LinkStatus.NOT_LINKED,
)


@never_cache
@require_http_methods(["GET", "POST"])
def participant_link(request: HttpRequest, token: str) -> HttpResponse:
    participant_id = participant_from_link_token(token)
    participant = (
        Participant.objects.select_related("study").filter(pk=participant_id).first()
        if participant_id
        else None
    )
    if participant is None:
        raise Http404
    participant_language_activate(request, participant.language)
    refused = enrollment.participant_collection_refusal(participant)  # withdrawn, or never consented
    needs_link = refused is None and participant.link_status in BROKEN
    if request.method == "POST" and needs_link:
        request.session[ENROLLMENT_SESSION_KEY] = participant.pk
        request.session.pop(STATUS_TOKEN_SESSION_KEY, None)
        return redirect("withings_connect")
    context = {
        "study": participant.study,
        "withdrawn": participant.status == Participant.Status.WITHDRAWN,
        "needs_link": needs_link,
    }
    return render(request, "participant/message_link.html", context)
