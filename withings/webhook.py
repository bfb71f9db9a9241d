"""`/withings/notify/<secret>/`: HTTP only — check the secret and the form, hand the delivery to
`notification_receive` (inbox row, processing after commit) and answer at once."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .services.notifications import KNOWN_KEYS, MAX_VALUE_LENGTH, notification_receive, notify_secret_matches


def _payload(request: HttpRequest) -> dict[str, str]:
    # PostgreSQL text and jsonb cannot hold NUL: drop it rather than fail the insert (a 500).
    return {
        key: request.POST.get(key, "").replace("\x00", "")[:MAX_VALUE_LENGTH]
        for key in KNOWN_KEYS
        if request.POST.get(key) is not None
    }


@csrf_exempt
def notify(request: HttpRequest, secret: str) -> HttpResponse:
    if not notify_secret_matches(secret):
        raise Http404
    if request.method in ("HEAD", "GET"):
        return HttpResponse(status=200)  # Withings checks the URL before subscribing
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "HEAD, GET, POST"})
    payload = _payload(request)
    userid = payload.get("userid", "")
    if not (userid.isascii() and userid.isdigit()):  # "１２３".isdigit() is True
        return HttpResponse("missing or malformed userid", status=400)
    notification_receive(payload=payload)
    return HttpResponse(status=200)
