"""Participant pages: open-link and invitation enrollment, e-consent, status page, withdrawal.

No participant identifier ever appears in a URL except the unguessable tokens; the enrolling
participant is carried in the session. Writes go through `cohorts.enrollment`.
"""

from __future__ import annotations

import hashlib

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core import throttle
from core.language import participant_language_activate, supported

from . import contacts, enrollment, hooks
from .consent_pdf import consent_pdf
from .forms import ConsentForm, ContactForm, EligibilityForm
from .models import ConsentDocument, Invitation, Participant, Study

ENROLLMENT_SESSION_KEY = "enrollment_participant_id"  # read by withings' connect step
OPEN_SESSION_KEY = "enroll_open_study_id"
INVITATION_SESSION_KEY = "enroll_invitation_id"
STATUS_TOKEN_SESSION_KEY = "participant_status_token"
TOKEN_FAILURES = {"limit": 20, "window": 600}
CONSENT_POSTS = {"limit": 20, "window": 600}


def _problem(request: HttpRequest, title: str, message: str, *, status: int, study: Study | None = None):
    return render(
        request,
        "participant/problem.html",
        {"title": title, "message": message, "study": study},
        status=status,
    )


def _study_language(request: HttpRequest, study: Study) -> None:
    """Enrollment pages speak a language the study enrolls in (its first one otherwise)."""
    if get_language() not in study.language_codes:
        participant_language_activate(request, study.language_codes[0])


def _too_many(request: HttpRequest) -> HttpResponse:
    return _problem(
        request,
        _("Please wait a moment"),
        _("There were too many attempts from your device. Please try again in 10 minutes."),
        status=429,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def enroll_open(request: HttpRequest, slug: str) -> HttpResponse:
    study = Study.objects.filter(
        slug=slug, enrollment_mode=Study.EnrollmentMode.OPEN, status=Study.Status.ACTIVE
    ).first()
    if study is None:
        raise Http404
    _study_language(request, study)
    form = EligibilityForm(request.POST or None, study=study)
    if request.method == "POST":
        if throttle.exceeded(request, "enroll-open", limit=30, window=3600):
            return _too_many(request)
        if form.is_valid():
            if not enrollment.is_eligible(study, form.answers()):
                return render(request, "participant/not_eligible.html", {"study": study})
            request.session.pop(INVITATION_SESSION_KEY, None)
            request.session[OPEN_SESSION_KEY] = study.pk
            return redirect("enroll_consent")
    return render(request, "participant/eligibility.html", {"study": study, "form": form})


@never_cache
def enroll_invitation(request: HttpRequest, token: str) -> HttpResponse:
    if throttle.blocked(request, "token", limit=TOKEN_FAILURES["limit"]):
        return _too_many(request)
    try:
        invitation = enrollment.invitation_for_token(token)
    except enrollment.EnrollmentError as exc:
        throttle.exceeded(request, "token", **TOKEN_FAILURES)
        study = Invitation.objects.filter(token=token).select_related("study").first() if token else None
        return _problem(
            request,
            _("This link does not work"),
            str(exc),
            status=410 if study else 404,
            study=study.study if study else None,
        )
    request.session.pop(OPEN_SESSION_KEY, None)
    request.session[INVITATION_SESSION_KEY] = invitation.pk
    _study_language(request, invitation.study)
    return render(request, "participant/welcome.html", {"study": invitation.study})


def _consent_subject(request: HttpRequest) -> tuple[Study, Participant | None, Invitation | None]:
    invitation_id = request.session.get(INVITATION_SESSION_KEY)
    if invitation_id:
        invitation = enrollment.invitation_for_token(
            Invitation.objects.filter(pk=invitation_id).values_list("token", flat=True).first() or ""
        )
        return invitation.study, invitation.participant, invitation
    study_id = request.session.get(OPEN_SESSION_KEY)
    study = Study.objects.filter(
        pk=study_id, enrollment_mode=Study.EnrollmentMode.OPEN, status=Study.Status.ACTIVE
    ).first()
    if study is None:
        raise enrollment.EnrollmentError(_("Please start again from the link you received."))
    return study, None, None


def _offered_consent(
    request: HttpRequest,
) -> tuple[Study, Participant | None, Invitation | None, ConsentDocument, str] | HttpResponse:
    """Who is consenting, the document offered and its exact text in the language offered (the page
    switches to it); or the page saying why not."""
    try:
        study, participant, invitation = _consent_subject(request)
    except enrollment.EnrollmentError as exc:
        return _problem(request, _("This link does not work"), str(exc), status=400)
    document = enrollment.current_consent(study)
    if document is None:
        return _problem(
            request,
            _("Not ready yet"),
            _("The study team has not published its consent form yet."),
            status=503,
            study=study,
        )
    language = enrollment.consent_language(study, document, supported(get_language()) or "en")
    if language != get_language():
        participant_language_activate(request, language)
    return study, participant, invitation, document, enrollment.render_consent_text(document, language)


@never_cache
@require_http_methods(["GET", "POST"])
def enroll_consent(request: HttpRequest) -> HttpResponse:
    offered = _offered_consent(request)
    if isinstance(offered, HttpResponse):
        return offered
    study, participant, invitation, document, text = offered
    digest = hashlib.sha256(text.encode()).hexdigest()
    if request.method == "POST" and throttle.exceeded(request, "enroll-consent", **CONSENT_POSTS):
        return _too_many(request)
    language = get_language()
    consent_text = document.text_for(language)
    form = ConsentForm(request.POST or None, document=consent_text, initial={"text_sha256": digest})
    contact_form = ContactForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid() & contact_form.is_valid():  # both report errors
        consent = {
            "document": document,
            "shown_text_sha256": form.cleaned_data["text_sha256"],
            "signature": form.cleaned_data["signature"],
            "keep_data_on_withdrawal": form.cleaned_data["keep_data"],
            "contact": contact_form.details(),
            "language": language,
            "consent_language": language,
        }
        try:
            if participant is None:
                outcome = enrollment.participant_self_enroll_with_consent(study=study, **consent)
            else:
                outcome = enrollment.participant_give_consent(
                    participant=participant, invitation=invitation, **consent
                )
        except enrollment.EnrollmentError as exc:
            form.add_error(None, str(exc))
        else:
            request.session.pop(OPEN_SESSION_KEY, None)
            request.session.pop(INVITATION_SESSION_KEY, None)
            request.session[ENROLLMENT_SESSION_KEY] = outcome.record.participant_id
            request.session[STATUS_TOKEN_SESSION_KEY] = outcome.status_token
            return redirect("enroll_connect")
    return render(
        request,
        "participant/consent.html",
        {
            "study": study,
            "document": document,
            "consent_text": consent_text,
            "form": form,
            "contact_form": contact_form,
        },
    )


def _pdf(data: bytes, *, study: Study, version: int) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="consent-{study.slug}-v{version}.pdf"'
    return response


@never_cache
@require_http_methods(["GET"])
def enroll_consent_pdf(request: HttpRequest) -> HttpResponse:
    """The consent form being offered, as a PDF (before consenting: the text only)."""
    offered = _offered_consent(request)
    if isinstance(offered, HttpResponse):
        return offered
    study, _participant, _invitation, document, text = offered
    return _pdf(consent_pdf(study=study, document=document, text=text), study=study, version=document.version)


def _status_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("participant_status", args=[token]))


@never_cache
def enroll_connect(request: HttpRequest) -> HttpResponse:
    participant = (
        Participant.objects.filter(pk=request.session.get(ENROLLMENT_SESSION_KEY))
        .select_related("study")
        .first()
    )
    if participant is None or participant.status == Participant.Status.WITHDRAWN:
        return _problem(
            request,
            _("This link does not work"),
            _("Please start again from the link you received."),
            status=400,
        )
    token = request.session.get(STATUS_TOKEN_SESSION_KEY)
    return render(
        request,
        "participant/connect.html",
        {
            "study": participant.study,
            "participant": participant,
            "status_url": _status_url(request, token) if token else None,
        },
    )


def _participant_by_token(request: HttpRequest, token: str) -> Participant | HttpResponse:
    if throttle.blocked(request, "token", limit=TOKEN_FAILURES["limit"]):
        return _too_many(request)
    participant = enrollment.participant_for_status_token(token)
    if participant is None:
        throttle.exceeded(request, "token", **TOKEN_FAILURES)
        raise Http404
    participant_language_activate(request, participant.language)
    return participant


@never_cache
def participant_status(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    context = {
        "study": participant.study,
        "participant": participant,
        "token": token,
        "withdrawn": participant.status == Participant.Status.WITHDRAWN,
        "link_ok": participant.link_status == Participant.LinkStatus.ACTIVE,
        "status_url": _status_url(request, token),
        "contact_form": ContactForm(
            initial=ContactForm.initial_for(contacts.contact_of(participant)), study=participant.study
        ),
        **hooks.status_context(participant),
    }
    return render(request, "participant/status.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def participant_contact(request: HttpRequest, token: str) -> HttpResponse:
    """The participant changes how the study may reach them (audited, without the values)."""
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    if participant.status == Participant.Status.WITHDRAWN:
        return redirect("participant_status", token=token)
    form = ContactForm(
        request.POST or None, initial=ContactForm.initial_for(contacts.contact_of(participant)),
        study=participant.study,
    )  # fmt: skip
    if request.method == "POST" and form.is_valid():
        contacts.contact_save(actor=None, participant=participant, details=form.details(), via="participant")
        return render(request, "participant/contact_saved.html", {"study": participant.study, "token": token})
    return render(
        request,
        "participant/contact.html",
        {"study": participant.study, "token": token, "contact_form": form},
    )


@never_cache
@require_http_methods(["POST"])
def participant_language(request: HttpRequest, token: str) -> HttpResponse:
    """The participant chooses the language of their pages and messages (on their private page)."""
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    language = request.POST.get("language", "")
    if participant.status != Participant.Status.WITHDRAWN and enrollment.participant_language_set(
        participant=participant, language=language
    ):
        participant_language_activate(request, language)
    return redirect("participant_status", token=token)


@never_cache
@require_http_methods(["POST"])
def participant_relink(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    if enrollment.participant_collection_refusal(participant):  # withdrawn, or never consented
        return redirect("participant_status", token=token)
    request.session[ENROLLMENT_SESSION_KEY] = participant.pk
    request.session[STATUS_TOKEN_SESSION_KEY] = token
    return redirect("withings_connect")


@never_cache
def participant_consent_copy(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    record = get_object_or_404(participant.consents.order_by("-consented_at")[:1])
    response = render(
        request,
        "participant/consent_copy.html",
        {"study": participant.study, "record": record, "participant": participant},
    )
    response["Content-Disposition"] = (
        f'attachment; filename="consent-{participant.study.slug}-v{record.version}.html"'
    )
    return response


@never_cache
@require_http_methods(["GET"])
def participant_consent_pdf(request: HttpRequest, token: str) -> HttpResponse:
    """What the participant signed, as a PDF: the exact text shown, then their consent record."""
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    record = get_object_or_404(participant.consents.select_related("document").order_by("-consented_at")[:1])
    data = consent_pdf(
        study=participant.study, document=record.document, text=record.rendered_text, record=record
    )
    return _pdf(data, study=participant.study, version=record.version)


@never_cache
@require_http_methods(["GET", "POST"])
def participant_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_by_token(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    keep = enrollment.keeps_data_on_withdrawal(participant)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        enrollment.participant_withdraw(participant=participant, reason="participant's own request")
        return render(request, "participant/withdrawn.html", {"study": participant.study, "keep": keep})
    if participant.status == Participant.Status.WITHDRAWN:
        return render(request, "participant/withdrawn.html", {"study": participant.study, "keep": keep})
    return render(
        request, "participant/withdraw.html", {"study": participant.study, "token": token, "keep": keep}
    )
