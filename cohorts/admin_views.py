"""Staff pages of the cohorts admin that are not model forms: re-link help (a fresh private link,
asked before the old one stops working) and the invitation handout (QR code, copy, print, PDF)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime

from . import handouts, services
from .admin_base import may_act_in
from .models import Invitation, Participant
from .scoping import EDITORS, scoped

RELINK_ENDED = (Participant.Status.WITHDRAWN, Participant.Status.COMPLETED)


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.PORTAL_BASE_URL}/enroll/invite/{invitation.token}/"


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    return target if target.startswith("/admin/") and "//" not in target else default


def _editable_participant(request, pk: int) -> Participant:
    """The participant, if the user may act on them (coordinators of their study and site);
    anything else is a 404: the page reveals nothing to whoever may not use it."""
    participant = get_object_or_404(
        scoped(Participant.objects.select_related("study", "site"), request.user, EDITORS), pk=pk
    )
    if not may_act_in(request, participant.study_id, participant.site_id):
        raise Http404
    return participant


def _contact_lines(study) -> list[str]:
    contact = " or ".join(c for c in (study.contact_phone, study.contact_email) if c)
    return [f"Questions? Contact the study team: {contact}."] if contact else []


def _relink_handout(participant: Participant, url: str) -> handouts.Handout:
    return handouts.Handout(
        title=f"{participant.study.name}: your private study page",
        url=url,
        lines=[
            "Open this link on your phone (or scan the code with its camera) to see how your "
            "readings are arriving and, if asked, to connect your Withings account again.",
            "Keep it private: it opens your page without a password. Your earlier link no longer works.",
        ],
        footer=[*_contact_lines(participant.study), f"Reference: {participant.code}"],
    )


def relink_view(request, admin_site, pk: int):
    """GET: what will happen, and a confirmation. POST with confirm=yes: a fresh link (the old one
    stops working), shown once as a page to print or as a PDF. Nothing changes without confirming."""
    participant = _editable_participant(request, pk)
    back = _safe_next(request, reverse("admin:measurements_monitoredparticipant_change", args=[pk]))
    invitation = participant.invitations.filter(used_at__isnull=True).order_by("-created_at").first()
    context = {
        **admin_site.each_context(request),
        "title": f"Re-link help for {participant.code}",
        "participant": participant,
        "back": back,
        "ended": participant.status in RELINK_ENDED,
        "not_enrolled": participant.status == Participant.Status.INVITED,
        "invitation": invitation if invitation and invitation.is_usable else None,
        "has_link": bool(participant.status_token_hash),
        "opts": Participant._meta,
    }
    if request.method == "POST" and request.POST.get("confirm") == "yes" and not context["ended"]:
        try:
            url = services.participant_relink(actor=request.user, participant=participant, via="admin")
        except services.RelinkRefused as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(back)
        handout = _relink_handout(participant, url)
        if request.POST.get("format") == "pdf":
            return _pdf_response(handout, f"private-link-{participant.code}.pdf")
        return TemplateResponse(
            request,
            "admin/cohorts/handout.html",
            {**context, "title": f"New private link for {participant.code}", "handout": handout,
             "qr": handouts.qr_svg(url), "relinked": True},
        )  # fmt: skip
    return TemplateResponse(request, "admin/cohorts/participant/relink_confirm.html", context)


def _editable_invitation(request, pk: int) -> Invitation:
    invitation = get_object_or_404(
        scoped(Invitation.objects.select_related("study", "participant"), request.user, EDITORS), pk=pk
    )
    if not may_act_in(request, invitation.study_id, invitation.participant.site_id):
        raise Http404
    return invitation


def _invitation_handout(invitation: Invitation) -> handouts.Handout:
    expires = localtime(invitation.expires_at, ZoneInfo(invitation.participant.timezone))
    return handouts.Handout(
        title=f"Invitation to the study {invitation.study.name}",
        url=invitation_url(invitation),
        lines=[
            "Open this link on your phone (or scan the code with its camera) to read about the "
            "study, give your consent and connect your Withings blood-pressure cuff.",
            f"The link works once and until {date_format(expires, 'j F Y, H:i')} "
            f"({invitation.participant.timezone} time). Keep it private.",
        ],
        footer=[*_contact_lines(invitation.study), f"Reference: {invitation.participant.code}"],
    )


def invitation_handout(request, admin_site, pk: int):
    invitation = _editable_invitation(request, pk)
    handout = _invitation_handout(invitation)
    return TemplateResponse(
        request,
        "admin/cohorts/handout.html",
        {
            **admin_site.each_context(request),
            "title": f"Invitation handout for {invitation.participant.code}",
            "participant": invitation.participant,
            "invitation": invitation,
            "handout": handout,
            "qr": handouts.qr_svg(handout.url),
            "usable": invitation.is_usable,
            "opts": Invitation._meta,
        },
    )


def invitation_handout_pdf(request, admin_site, pk: int):  # noqa: ARG001 — the admin's route signature
    invitation = _editable_invitation(request, pk)
    return _pdf_response(_invitation_handout(invitation), f"invitation-{invitation.participant.code}.pdf")


def _pdf_response(handout: handouts.Handout, filename: str) -> HttpResponse:
    response = HttpResponse(handouts.handout_pdf(handout), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
