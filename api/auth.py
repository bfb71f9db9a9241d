"""Bearer-token authentication, rate limits and the audit of every call, around each API view.

No session and no cookie is ever read here: a browser signed in to the admin cannot be made to call
the API (so the views need no CSRF token), and a token never becomes a session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from cohorts.models import Study
from cohorts.services import audit_record
from core.throttle import exceeded, exceeded_for

from .models import AccessToken
from .selectors import BadRequest
from .services import access_token_lookup, access_token_touch

logger = logging.getLogger(__name__)

#: Failed authentications per client address per minute before 429 (guessing tokens is pointless
#: at 256 bits, but a flood of them still costs a hash and a query each).
AUTH_FAILURES_PER_MINUTE = 30
NOT_AUDITED_PARAMS = frozenset({"cursor"})


@dataclass
class Call:
    """What a view knows of the call, and what it reports for the audit."""

    token: AccessToken
    study: Study | None = None
    detail: dict = field(default_factory=dict)

    @property
    def user(self):
        return self.token.user


def problem(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message, "status": status}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def unauthorized(message: str) -> JsonResponse:
    return problem(401, message, WWW_Authenticate='Bearer realm="api"')


def _presented_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authenticate(request: HttpRequest) -> AccessToken | JsonResponse:
    presented = _presented_token(request)
    token = access_token_lookup(presented) if presented else None
    if token is not None and token.is_usable and token.user.is_active and token.user.is_staff:
        return token
    if exceeded(request, "api-auth-failures", limit=AUTH_FAILURES_PER_MINUTE, window=60):
        return problem(429, "Too many failed attempts: wait a minute.", Retry_After="60")
    if token is None:
        logger.info("API call without a valid token: %s %s", request.method, request.path)
        return unauthorized("Send a valid token: Authorization: Bearer <token>.")
    reason = "revoked" if token.revoked_at else "expired" if not token.is_usable else "account inactive"
    audit_record(
        actor=token.user,
        action="api.refused",
        target=request.path[:200],
        detail={"method": request.method, "status": 401, "token": token.prefix, "reason": reason},
    )
    return unauthorized(f"This token is {reason}.")


def _query_for_audit(request: HttpRequest) -> dict:
    return {k: v for k, v in request.GET.items() if k not in NOT_AUDITED_PARAMS}


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Authenticate, rate-limit per token, run the view, audit the outcome (success or not)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, **kwargs) -> HttpResponse:
        token = _authenticate(request)
        if isinstance(token, HttpResponse):
            return token
        call = Call(token=token)
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if exceeded_for(f"api-token:{token.pk}", limit=limit, window=60):
            response: HttpResponse = problem(
                429, f"More than {limit} calls in a minute: wait a minute.", Retry_After="60"
            )
        else:
            access_token_touch(token)
            try:
                response = view(request, call, **kwargs)
            except Http404:
                call.study = None  # nothing of a study the caller may not see is recorded
                response = problem(404, "Not found, or not yours to see.")
            except PermissionDenied as exc:
                response = problem(403, str(exc) or "Not allowed.")
            except BadRequest as exc:
                response = problem(400, str(exc))
            except ValidationError as exc:
                response = problem(400, " ".join(exc.messages))
        audit_record(
            actor=token.user,
            action="api.call",
            study=call.study,
            target=request.path[:200],
            detail={
                "method": request.method,
                "status": response.status_code,
                "token": token.prefix,
                "query": _query_for_audit(request),
                **call.detail,
            },
        )
        return response

    return wrapper
