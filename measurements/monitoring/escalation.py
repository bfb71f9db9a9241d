"""Escalation of severe/low-reading alerts nobody acknowledged by their deadline: the next step of the
study's safety plan (the designated clinician or PI, then the operators) is notified by e-mail and by
SMS where they gave a number — run by ``manage.py tick`` as of an instant.

Never two escalations of the same step: the step is one ``AlertEscalation`` row, unique per (alert,
step), written under a row lock of the alert (``SKIP LOCKED``: a second worker passes it by). Never
after acknowledgement: the lock is taken only on an alert still open and unacknowledged, and
`alert_acknowledge` takes the same lock. A withdrawn participant's alert is not escalated. The next
deadline counts from the previous deadline, so a timeline does not depend on when tick runs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q

from cohorts import hooks
from cohorts.models import Participant, StudyMembership, User
from cohorts.services import audit_record
from core.ticking import TickLine, TickRequest
from measurements.models import Alert, AlertEscalation, SafetyPlan

from .alerts import MESSAGES, alert_recipients, alert_url, deadline_sentence
from .safety import step_deadline

logger = logging.getLogger(__name__)
Audience = SafetyPlan.Audience


@dataclass(frozen=True)
class Staff:
    emails: tuple[str, ...]
    phones: tuple[str, ...]  # E.164, decrypted only to send; never logged


def _site_q(site_id: int | None) -> Q:
    return Q(site__isnull=True) | (Q(site_id=site_id) if site_id is not None else Q(pk__in=[]))


def step_staff(*, audience: str, study_id: int, site_id: int | None) -> Staff:
    """Who a step of the chain reaches: e-mail addresses, and numbers of those who gave one."""
    if audience == Audience.OPERATORS:
        emails = User.objects.filter(is_superuser=True, is_active=True).order_by("email")
        return Staff(tuple(emails.values_list("email", flat=True)), ())
    members = StudyMembership.objects.filter(_site_q(site_id), study_id=study_id, user__is_active=True)
    if audience == Audience.CLINICIAN:
        members = members.filter(safety_clinician=True)
        emails = tuple(members.order_by("user__email").values_list("user__email", flat=True))
    else:
        emails = tuple(alert_recipients(study_id=study_id, site_id=site_id))
        members = members.filter(role="coordinator")
    phones = tuple(p for p in members.order_by("pk").values_list("phone", flat=True) if p)
    return Staff(emails, phones)


def alert_escalate(*, alert_id: int, at: dt.datetime) -> AlertEscalation | None:
    """Escalate the alert one step if its deadline passed at `at`: None when it is not due, was
    acknowledged or resolved, another worker holds it, the chain is exhausted, or the participant
    withdrew. Notifies the step after commit."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("participant", "study", "safety_plan")
            .filter(
                pk=alert_id,
                resolved_at__isnull=True,
                acknowledged_at__isnull=True,
                deadline_at__lte=at,
                safety_plan__isnull=False,
            )
            .first()
        )
        if alert is None or alert.participant.status == Participant.Status.WITHDRAWN:
            return None
        plan = alert.safety_plan
        assert plan is not None  # the filter holds it
        assert alert.deadline_at is not None
        step = alert.step + 1
        steps = plan.steps()
        if step >= len(steps):
            return None
        deadline = step_deadline(plan, step, alert.deadline_at, alert.study.default_timezone)
        try:
            with transaction.atomic():
                escalation = AlertEscalation.objects.create(
                    alert=alert, step=step, audience=steps[step][0], deadline_at=deadline, notified_at=at
                )
        except IntegrityError:  # the step exists already: someone escalated it
            return None
        Alert.objects.filter(pk=alert.pk).update(step=step, deadline_at=deadline)
        alert.step, alert.deadline_at = step, deadline
        staff = step_staff(
            audience=escalation.audience, study_id=alert.study_id, site_id=alert.participant.site_id
        )
        fallback = not (staff.emails or staff.phones) and escalation.audience != Audience.OPERATORS
        if fallback:  # nobody holds this step (no clinician designated): never escalate into silence
            staff = step_staff(audience=Audience.OPERATORS, study_id=alert.study_id, site_id=None)
        audit_record(
            action="alert.escalated",
            participant=alert.participant,
            target=alert.participant.code,
            detail={
                "alert": alert.pk,
                "kind": alert.kind,
                "step": step,
                "to": escalation.audience,
                "deadline": deadline.isoformat(),
                "emails": len(staff.emails),
                "texts": len(staff.phones),
                "fallback_to_operators": fallback,
            },
        )
        transaction.on_commit(lambda: _notify(alert, escalation, staff))
    return escalation


def _notify(alert: Alert, escalation: AlertEscalation, staff: Staff) -> None:
    code = alert.participant.code
    zone = alert.study.default_timezone
    body = MESSAGES[alert.kind].format(**{"value": "", "since": "", **alert.detail})
    holder = str(dict(Audience.choices)[escalation.audience])
    holder = holder[0].lower() + holder[1:]
    subject = f"[Cohort portal] ESCALATED {alert.study.slug} {code}: {alert.get_kind_display()}"
    text = (
        f"Participant {code} of {alert.study.name}: {body}\n\nNobody acknowledged it by the deadline; it "
        f"is now with you ({holder}, step {escalation.step + 1} of the safety plan).\n"
        f"{deadline_sentence(escalation.deadline_at, zone)}\n\nOpen the alert: {alert_url(alert.pk)}"
    )
    emails = 0
    if staff.emails:
        send_mail(subject, text, None, list(staff.emails), fail_silently=False)
        emails = len(staff.emails)
    texts = 0
    sms = (
        f"{alert.study.name}: safety alert for participant {code} not acknowledged - now with you. "
        f"Acknowledge by {escalation.deadline_at.astimezone(dt.UTC):%H:%M} UTC: {alert_url(alert.pk)}"
    )
    for phone in staff.phones:
        for sender in hooks.staff_sms_senders:
            try:
                sender(phone, sms)
                texts += 1
            except Exception as exc:  # one failed text must not stop the others; never log the number
                logger.warning("escalation text for alert %s failed: %s", alert.pk, type(exc).__name__)
    AlertEscalation.objects.filter(pk=escalation.pk).update(emails=emails, texts=texts)


def escalations_due(at: dt.datetime, study: str | None = None) -> list[int]:
    qs = Alert.objects.filter(
        resolved_at__isnull=True, acknowledged_at__isnull=True, deadline_at__lte=at, safety_plan__isnull=False
    )
    if study:
        qs = qs.filter(study__slug=study)
    return list(qs.order_by("deadline_at", "pk").values_list("pk", flat=True))


def escalations_tick(request: TickRequest) -> list[TickLine]:
    """The tick job: escalate every alert past its deadline (several steps if tick ran late)."""
    due = escalations_due(request.at, request.study)
    if request.dry_run:
        return [TickLine("safety", request.study or "all", "escalations due", len(due))] if due else []
    done: list[AlertEscalation] = []
    for alert_id in due:
        while (escalation := alert_escalate(alert_id=alert_id, at=request.at)) is not None:
            done.append(escalation)
    if not done:
        return []
    samples = tuple(f"alert {e.alert_id} → step {e.step} ({e.audience})" for e in done[:10])
    return [TickLine("safety", request.study or "all", "escalated", len(done), samples)]
