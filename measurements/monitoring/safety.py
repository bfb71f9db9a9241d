"""A study's safety plan: the version in force, saving a new version (audited), and what it says
in words — the text an IRB approves, shown in the admin as such."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from cohorts.models import Study
from cohorts.scoping import EDITORS, user_can
from cohorts.services import audit_record
from measurements.models import SafetyPlan

from .deadlines import deadline_after
from .protocol import protocol_for_study

#: What a coordinator edits; everything else of a version is set by the service.
PLAN_FIELDS = (
    "approval_reference",
    "severe_systolic",
    "severe_diastolic",
    "severe_message",
    "severe_message_es",
    "severe_message_fr",
    "low_systolic",
    "low_message",
    "low_message_es",
    "low_message_fr",
    "ack_minutes",
    "working_hours_only",
    "work_start",
    "work_end",
    "escalation",
    "confirm_window_minutes",
    "message_participant",
    "safety_ignores_quiet_hours",
)


def safety_plan_current(study_id: int) -> SafetyPlan:
    """The version in force; a study without one gets version 1 with the defaults (created once,
    also when two callers race)."""
    plan = SafetyPlan.objects.filter(study_id=study_id).order_by("-version").first()
    if plan is not None:
        return plan
    protocol = protocol_for_study(study_id)  # its crisis thresholds carry over into version 1
    try:
        with transaction.atomic():
            plan, _created = SafetyPlan.objects.get_or_create(
                study_id=study_id,
                version=1,
                defaults={
                    "severe_systolic": protocol.crisis_systolic,
                    "severe_diastolic": protocol.crisis_diastolic,
                },
            )
    except IntegrityError:
        plan = SafetyPlan.objects.get(study_id=study_id, version=1)
    return plan


@transaction.atomic
def safety_plan_save(*, actor, study: Study, values: dict) -> SafetyPlan:
    """Add a version of the study's plan (a coordinator's edit). Bad values → ValidationError, nothing
    saved. Alerts already open keep the version they were raised under."""
    if actor is not None and not user_can(actor, study, EDITORS):
        raise PermissionDenied("Only the study's coordinators edit its safety plan.")
    # Lock the study row: two editors saving at once get versions n+1 and n+2, not a clash.
    Study.objects.select_for_update().filter(pk=study.pk).first()
    newest = (
        SafetyPlan.objects.filter(study=study).order_by("-version").values_list("version", flat=True).first()
    )
    plan = SafetyPlan(study=study, version=(newest or 0) + 1, created_by=actor)
    for name in PLAN_FIELDS:
        if name in values:
            setattr(plan, name, values[name])
    plan.full_clean()
    plan.save()
    audit_record(
        actor=actor,
        action="safety_plan.saved",
        study=study,
        target=f"v{plan.version}",
        detail={"version": plan.version, "approval": plan.approval_reference},
    )
    return plan


def working_hours(plan: SafetyPlan) -> tuple[dt.time, dt.time] | None:
    return (plan.work_start, plan.work_end) if plan.working_hours_only else None


def step_deadline(plan: SafetyPlan, step: int, start: dt.datetime, zone: str) -> dt.datetime:
    """The deadline of the chain's ``step``, counted from ``start`` (its notification, or the
    previous step's deadline)."""
    _audience, minutes = plan.steps()[step]
    return deadline_after(start, minutes, zone=zone, working_hours=working_hours(plan))


def _duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def approved_text(plan: SafetyPlan) -> str:
    """The plan in words, as submitted to and approved by the IRB."""
    audience = dict(SafetyPlan.Audience.choices)
    counting = (
        f"counting only working hours ({plan.work_start:%H:%M}–{plan.work_end:%H:%M}, Monday to Friday, "
        f"{plan.study.default_timezone})"
        if plan.working_hours_only
        else "around the clock"
    )
    lines = [
        f"Safety plan of {plan.study.name}, version {plan.version}"
        + (f" (approval {plan.approval_reference})" if plan.approval_reference else "")
        + ".",
        f"1. A reading above {plan.severe_systolic} mmHg systolic or above {plan.severe_diastolic} mmHg "
        "diastolic is a severe reading.",
    ]
    if plan.low_systolic is not None:
        lines.append(f"   A reading below {plan.low_systolic} mmHg systolic is a low reading.")
    delivery = "on their private study page and at once by their chosen channel (text or e-mail)"
    if not plan.message_participant:
        delivery = "on their private study page (no text or e-mail)"
    quiet = "even in quiet hours" if plan.safety_ignores_quiet_hours else "once quiet hours end"
    lines += [
        f"2. The participant is told, {delivery}, {quiet}:",
        f'   Severe: "{plan.severe_message}"',
        *(f'   Severe ({name}): "{text}"' for name, text in _translated(plan, "severe")),
    ]
    if plan.low_systolic is not None:
        lines.append(f'   Low: "{plan.low_message}"')
        lines += [f'   Low ({name}): "{text}"' for name, text in _translated(plan, "low")]
    lines.append(
        f"3. The site coordinators are e-mailed and acknowledge within {_duration(plan.ack_minutes)}, "
        f"{counting}, recording the outcome (contacted, advised to seek care, or no action with a reason) "
        "and a note."
    )
    for i, (to, minutes) in enumerate(plan.steps()[1:], start=4):
        lines.append(
            f"{i}. Not acknowledged by the deadline: {audience.get(to, to).lower()} are notified by e-mail "
            f"(and text where they gave a number) and acknowledge within {_duration(minutes)}."
        )
    lines.append(
        f"A re-measurement within {plan.confirm_window_minutes} min is shown beside the first reading; "
        "neither is hidden."
    )
    return "\n".join(lines)


def _translated(plan: SafetyPlan, kind: str) -> list[tuple[str, str]]:
    """The plan's message of ``kind`` in each other language it has (blank ones are sent in English)."""
    names = {"es": "Spanish", "fr": "French"}
    return [
        (name, getattr(plan, f"{kind}_message_{code}").strip())
        for code, name in names.items()
        if getattr(plan, f"{kind}_message_{code}").strip()
    ]
