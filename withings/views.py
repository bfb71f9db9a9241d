"""Participant-facing pages of the connect step: redirect to Withings, handle the callback."""

from __future__ import annotations

import hmac
import logging
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cohorts.models import Participant
from cohorts.views import ENROLLMENT_SESSION_KEY, STATUS_TOKEN_SESSION_KEY
from measurements.monitoring.next_steps import participant_next_steps

from .client import authorization_url
from .errors import (
    WithingsAccountAlreadyLinked,
    WithingsError,
    WithingsTerminalError,
    WithingsTransientError,
)
from .selectors import app_credentials_for_study
from .services.link import connection_create_from_code

logger = logging.getLogger(__name__)


OAUTH_SESSION_KEY = "withings_oauth"
CONNECTED_SESSION_KEY = "withings_connected_participant_id"
INVALID_PARAMS = 503


def callback_url() -> str:
    return f"{settings.PORTAL_BASE_URL}{reverse('withings_callback')}"


def _problem(request: HttpRequest, kind: str, status: int, *, can_retry: bool = True) -> HttpResponse:
    context = {"kind": kind, "can_retry": can_retry}
    return render(request, "withings/problem.html", context, status=status)


def _enrolling_participant(request: HttpRequest) -> Participant | None:
    participant_id = request.session.get(ENROLLMENT_SESSION_KEY)
    if not participant_id:
        return None
    return Participant.objects.filter(pk=participant_id).exclude(status=Participant.Status.WITHDRAWN).first()


@never_cache
@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """Send the participant to Withings with a fresh ``state`` bound to this session."""
    participant = _enrolling_participant(request)
    if participant is None:
        return _problem(request, "no_session", 400, can_retry=False)
    state = secrets.token_urlsafe(32)
    request.session[OAUTH_SESSION_KEY] = {"state": state, "participant_id": participant.pk}
    credentials = app_credentials_for_study(study_id=participant.study_id)
    return redirect(authorization_url(credentials, redirect_uri=callback_url(), state=state))


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Withings sends the participant back here: check ``state``, exchange the code now."""
    bound = request.session.get(OAUTH_SESSION_KEY) or {}
    state = request.GET.get("state", "")
    participant_id = bound.get("participant_id")
    if (
        not state
        or not bound.get("state")
        or not hmac.compare_digest(str(bound["state"]).encode(), state.encode())
        or request.session.get(ENROLLMENT_SESSION_KEY) != participant_id
    ):
        return _problem(request, "state_mismatch", 400)
    del request.session[OAUTH_SESSION_KEY]  # single use
    if request.GET.get("error") == "access_denied":
        return _problem(request, "refused", 200)
    code = request.GET.get("code", "")
    if request.GET.get("error") or not code:
        logger.warning("withings callback without code: error=%s", request.GET.get("error", "")[:100])
        return _problem(request, "upstream", 502)
    try:
        connection_create_from_code(participant_id=participant_id, code=code, redirect_uri=callback_url())
    except WithingsAccountAlreadyLinked:
        return _problem(request, "already_linked", 409, can_retry=False)
    except WithingsTransientError:
        return _problem(request, "busy", 503)
    except WithingsTerminalError as exc:
        kind = "expired" if exc.status == INVALID_PARAMS else "upstream"
        return _problem(request, kind, 400 if kind == "expired" else 502)
    except WithingsError:
        return _problem(request, "upstream", 502)
    except Participant.DoesNotExist:
        return _problem(request, "no_session", 400, can_retry=False)
    request.session[CONNECTED_SESSION_KEY] = participant_id
    return redirect("withings_connected")


@never_cache
@require_GET
def connected(request: HttpRequest) -> HttpResponse:
    if not request.session.get(CONNECTED_SESSION_KEY):
        return _problem(request, "no_session", 400, can_retry=False)
    token = request.session.get(STATUS_TOKEN_SESSION_KEY)
    status_url = request.build_absolute_uri(reverse("participant_status", args=[token])) if token else None
    participant = _connected_participant(request)
    return render(
        request,
        "withings/connected.html",
        {
            "status_url": status_url,
            "study": participant.study if participant else None,
            "next_steps": participant_next_steps(participant) if participant else None,
        },
    )


def _connected_participant(request: HttpRequest) -> Participant | None:
    return (
        Participant.objects.filter(pk=request.session.get(CONNECTED_SESSION_KEY))
        .select_related("study")
        .first()
    )
