"""`/withings/notify/<secret>/`: store each delivery in the inbox, answer at once, work after commit.

Notifications are not signed (withings-api.md §3): the unguessable secret in the URL and a known
`userid` decide whether we do any work, and the payload is only a hint — processing always
re-fetches through the authenticated API.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt

from .models import Notification, WithingsConnection

logger = logging.getLogger(__name__)
KNOWN_KEYS = ("userid", "appli", "startdate", "enddate", "date", "action", "deviceid")
MAX_VALUE_LENGTH = 64


def notify_secret() -> str:
    """The configured secret, or one derived from SECRET_KEY (stable, unguessable)."""
    if settings.WITHINGS_NOTIFY_SECRET:
        return settings.WITHINGS_NOTIFY_SECRET
    return hmac.new(settings.SECRET_KEY.encode(), b"withings-notify", hashlib.sha256).hexdigest()[:40]


def notify_callback_url() -> str:
    return f"{settings.PORTAL_BASE_URL}/withings/notify/{notify_secret()}/"


def _payload(request: HttpRequest) -> dict[str, str]:
    # PostgreSQL text and jsonb cannot hold NUL: drop it rather than fail the insert (a 500).
    return {
        key: request.POST.get(key, "").replace("\x00", "")[:MAX_VALUE_LENGTH]
        for key in KNOWN_KEYS
        if request.POST.get(key) is not None
    }


def dedupe_key(payload: dict[str, str]) -> str:
    canonical = "&".join(f"{k}={payload[k]}" for k in sorted(payload))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _int(value: str | None, *, bits: int = 64) -> int | None:
    """An integer that fits the column (bigint, or integer for `appli`), else None: a hint we ignore."""
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    limit = 2 ** (bits - 1)
    return number if number is None or -limit <= number < limit else None


@csrf_exempt
def notify(request: HttpRequest, secret: str) -> HttpResponse:
    if not hmac.compare_digest(secret.encode(), notify_secret().encode()):
        raise Http404
    if request.method in ("HEAD", "GET"):
        return HttpResponse(status=200)  # Withings checks the URL before subscribing
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "HEAD, GET, POST"})
    payload = _payload(request)
    userid = payload.get("userid", "")
    if not (userid.isascii() and userid.isdigit()):  # "１２３".isdigit() is True
        return HttpResponse("missing or malformed userid", status=400)
    connection_id = (
        WithingsConnection.objects.filter(withings_userid=userid).values_list("pk", flat=True).first()
    )
    status = Notification.Status.PENDING if connection_id else Notification.Status.IGNORED
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                dedupe_key=dedupe_key(payload),
                userid=userid,
                appli=_int(payload.get("appli"), bits=32),
                startdate=_int(payload.get("startdate")),
                enddate=_int(payload.get("enddate")),
                action=payload.get("action", ""),
                payload=payload,
                connection_id=connection_id,
                status=status,
                received_at=now(),
            )
            if connection_id:
                from .tasks import process_notification

                transaction.on_commit(lambda: process_notification.delay(notification.pk))
    except IntegrityError:
        pass  # a retried delivery: already in the inbox
    return HttpResponse(status=200)
