"""Safety messages: the participant gets their study's safety-plan message at once, by their channel,
when a severe (or low) reading raises an alert — quiet hours do not hold it back unless the study's plan
says so; and safety escalations text staff through the same SMS backend.

Once per alert (the message's dedupe key is the alert), never to a withdrawn participant, nothing when
the study turned participant safety messages off (the private page still shows the message).
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from django.utils import timezone

from cohorts.models import Participant
from measurements.models import Alert
from measurements.monitoring.safety_status import safety_message_for

from . import channels
from .dispatch import send_message
from .models import Message, Reason, StudyMessaging
from .scheduler.candidates import in_quiet_hours
from .services import message_queue

logger = logging.getLogger(__name__)


def quiet_hours_end(participant: Participant, at: dt.datetime) -> dt.datetime:
    """`at`, or the end of the participant's quiet hours (their zone) when `at` falls inside them."""
    rules = StudyMessaging.objects.filter(study_id=participant.study_id).first() or StudyMessaging()
    tz = ZoneInfo(participant.timezone)
    local = at.astimezone(tz)
    if not in_quiet_hours(local.time(), rules.quiet_start, rules.quiet_end):
        return at
    end_day = local.date() if local.time() < rules.quiet_end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(end_day, rules.quiet_end, tzinfo=tz).astimezone(dt.UTC)


def safety_alert_raised(alert_id: int) -> Message | None:
    """Queue the participant's safety message and send it now, in this process (the row is there
    first: a failed send is retried by the dispatcher's sweep) — or at the end of quiet hours, when
    the study's plan keeps them for safety messages too."""
    alert = Alert.objects.select_related("participant__study", "safety_plan").get(pk=alert_id)
    participant, plan = alert.participant, alert.safety_plan
    if plan is None or not plan.message_participant:
        return None
    if participant.status == Participant.Status.WITHDRAWN:
        return None
    at = timezone.now()
    due = at if plan.safety_ignores_quiet_hours else quiet_hours_end(participant, at)
    message = message_queue(
        participant=participant,
        reason=Reason.SAFETY,
        dedupe_key=f"safety:{alert.pk}",
        context={"safety_message": safety_message_for(alert, participant.language)},
        due_at=due,
    )
    if message is not None and due <= at:
        send_message(message.pk, now=at)
    return message


def staff_sms_send(phone: str, text: str) -> str:
    """Text a staff member (a safety escalation); returns the provider id. Raises channels' SendError."""
    provider_id, _status = channels.send_sms(
        channels.Outgoing(to=phone, subject="", body=text, participant_id=None)
    )
    return provider_id
