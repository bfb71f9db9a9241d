"""The participant's side of the safety plan: after a severe (or low) reading, their private page shows
the plan's message at the top, for a day, whatever the team did since — the advice stays valid."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import translation
from django.utils.timezone import now
from django.utils.translation import gettext

from cohorts.models import Participant
from measurements import quality
from measurements.models import Alert

#: How long the message stays at the top of the participant's page after the reading's alert opened.
SHOWN_FOR = dt.timedelta(hours=24)
SAFETY_KINDS = (Alert.Kind.CRISIS, Alert.Kind.LOW_BP)


def safety_message_for(alert: Alert, language: str = "en") -> str:
    """The plan's message for the alert's kind, in ``language`` when the plan has it (else English);
    when the reading broke a soft plausibility rule (see `measurements.quality`), followed by what was
    flagged and a request for a repeat measurement, in the same language."""
    plan = alert.safety_plan
    assert plan is not None
    message = plan.participant_message(low=alert.kind == Alert.Kind.LOW_BP, language=language)
    detail = alert.detail or {}
    flagged, flags = detail.get("flagged"), detail.get("quality_flags")
    if not flagged:
        return message
    if language == "en" or not flags:
        return f"{message} (This reading was {flagged}.)"
    with translation.override(language):
        rules = ", ".join(str(label) for label in quality.labels(flags))
        note = gettext("(This reading was flagged: %(rules)s — confirm with a repeat measurement.)") % {
            "rules": rules
        }
    return f"{message} {note}"


def safety_status_context(participant: Participant) -> dict[str, Any]:
    if participant.status == Participant.Status.WITHDRAWN:
        return {}
    alert = (
        Alert.objects.filter(
            participant=participant,
            kind__in=SAFETY_KINDS,
            safety_plan__isnull=False,
            opened_at__gte=now() - SHOWN_FOR,
        )
        .select_related("safety_plan")
        .order_by("-opened_at")
        .first()
    )
    if alert is None:
        return {}
    return {
        "safety_message": safety_message_for(alert, participant.language),
        "safety_kind": alert.kind,
        "safety_reading_at": alert.reading_at,
    }
