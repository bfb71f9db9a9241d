"""Notification subscriptions per connection: subscribe after linking, check and repair daily.

Withings may drop a subscription after repeated failed deliveries (docs/withings-api.md §3), so the
state is checked with `notify list` and whatever is missing is subscribed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils.timezone import now

from withings.errors import WithingsError, WithingsTerminalError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE

from .api import ConnectionApi
from .linkstate import subscription_state_report
from .notifications import notify_callback_url

logger = logging.getLogger(__name__)
APPLI_BLOOD_PRESSURE = 4
APPLI_USER_EVENTS = 46  # unlink / delete / update of the Withings account
APPLIS = (APPLI_BLOOD_PRESSURE, APPLI_USER_EVENTS)


@dataclass
class SubscriptionCheck:
    connection_id: int
    present: set[int]
    missing: set[int]
    repaired: set[int]


def _set_state(connection_id: int, state: str, error: str = "") -> None:
    fields: dict[str, object] = {"subscription_state": state}
    if state == WithingsConnection.SubscriptionState.SUBSCRIBED:
        fields["subscribed_at"] = now()
    if error:
        fields["last_error"] = error[:255]
        fields["last_error_at"] = now()
    WithingsConnection.objects.filter(pk=connection_id).update(**fields)
    conn = WithingsConnection.objects.filter(pk=connection_id).values("participant_id", "status").first()
    if conn is not None:
        lost = state != WithingsConnection.SubscriptionState.SUBSCRIBED and conn["status"] in REFRESHABLE
        subscription_state_report(participant_id=conn["participant_id"], lost=lost, reason=error)


def _subscribe(api: ConnectionApi, appli: int) -> None:
    api.post(
        "/notify",
        {
            "action": "subscribe",
            "callbackurl": notify_callback_url(),
            "appli": appli,
            "comment": "Cohort portal",
        },
    )


def connection_subscribe(*, connection_id: int, applis: tuple[int, ...] = APPLIS) -> None:
    api = ConnectionApi.for_id(connection_id)
    try:
        for appli in applis:
            _subscribe(api, appli)
    except WithingsTerminalError as exc:  # e.g. 293: our callback did not answer the HEAD check
        _set_state(connection_id, WithingsConnection.SubscriptionState.FAILED, f"subscribe: {exc.short}")
        raise
    _set_state(connection_id, WithingsConnection.SubscriptionState.SUBSCRIBED)


def connection_check_subscriptions(*, connection_id: int, repair: bool) -> SubscriptionCheck:
    api = ConnectionApi.for_id(connection_id)
    body = api.post("/notify", {"action": "list"})
    url = notify_callback_url()
    profiles = body.get("profiles") if isinstance(body, dict) else None
    present = {
        int(p["appli"])
        for p in (profiles if isinstance(profiles, list) else [])
        if isinstance(p, dict) and p.get("callbackurl") == url and str(p.get("appli", "")).isdigit()
    }
    missing = set(APPLIS) - present
    repaired: set[int] = set()
    if missing and repair:
        for appli in sorted(missing):
            try:
                _subscribe(api, appli)
                repaired.add(appli)
            except WithingsError as exc:
                logger.warning(
                    "resubscribe failed connection=%s appli=%s: %s", connection_id, appli, exc.short
                )
    still_missing = missing - repaired
    state = (
        WithingsConnection.SubscriptionState.SUBSCRIBED
        if not still_missing
        else WithingsConnection.SubscriptionState.MISSING
    )
    _set_state(connection_id, state)
    return SubscriptionCheck(connection_id, present, missing, repaired)


def connection_unsubscribe(*, connection_id: int) -> int:
    """Revoke our subscriptions (withdrawal). Returns how many were revoked."""
    api = ConnectionApi.for_id(connection_id)
    revoked = 0
    for appli in APPLIS:
        try:
            api.post("/notify", {"action": "revoke", "callbackurl": notify_callback_url(), "appli": appli})
            revoked += 1
        except WithingsTerminalError:
            pass  # nothing to revoke
    _set_state(connection_id, WithingsConnection.SubscriptionState.MISSING)
    return revoked
