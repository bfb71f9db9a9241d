"""Alerts: raised once per episode, e-mailed to the study's coordinators (of the participant's
site), resolved when the condition clears (states) or when acknowledged (crisis readings).

"Once per episode" is held by the database: a partial unique index allows one open alert per
(participant, kind), so concurrent evaluations of the same condition insert one row; the loser
counts an occurrence on the open one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils.timezone import now

from cohorts import hooks
from cohorts.models import Participant, Role, StudyMembership
from cohorts.scoping import EDITORS, user_can
from cohorts.services import audit_record
from measurements import quality
from measurements.models import (
    Alert,
    AlertEscalation,
    AlertNote,
    BloodPressureReading,
    Device,
    SafetyPlan,
    StudyProtocol,
)

from .adherence import VALID_READINGS
from .protocol import MONITORED_STATUSES, participant_period, protocol_for_study
from .safety import safety_plan_current, step_deadline
from .severity import BP_KINDS

logger = logging.getLogger(__name__)
Kind = Alert.Kind
#: Crisis readings older than this (a back-fill of history, a late CSV import) are classified in the
#: admin but raise no alert.
CRISIS_ALERT_MAX_AGE = dt.timedelta(days=7)
BROKEN_LINKS = frozenset({Participant.LinkStatus.NEEDS_REAUTH, Participant.LinkStatus.REVOKED})
LOW_BATTERY_VALUES = frozenset({"low", "very low", "critical"})
#: The kinds the periodic evaluation owns (subscription state is reported by the withings app).
EVALUATED_KINDS = (Kind.NO_DATA, Kind.LINK_BROKEN, Kind.LOW_BATTERY, Kind.CUFF_NOT_SYNCED)
#: BP alerts are acknowledged with a note saying what was done.
NOTE_REQUIRED = frozenset(BP_KINDS)
NOTE_REQUIRED_MESSAGE = (
    "Write what was done before acknowledging a crisis reading (e.g. called the participant, advised "
    "them to see their GP): the alert stays open until then."
)
OUTCOME_REQUIRED_MESSAGE = (
    "Choose the outcome (contacted the participant, advised them to seek care, or no action — with the "
    "reason in the note) before acknowledging a severe or low reading."
)
NOTE_MAX_LENGTH = 2000

MESSAGES = {
    Kind.CRISIS: "a severe reading, above the study's safety plan thresholds ({value}). Please follow "
    "the study's safety plan.",
    Kind.LOW_BP: "a low reading, below the study's safety plan threshold ({value}). Please follow the "
    "study's safety plan.",
    Kind.NO_DATA: "no reading since {since}.",
    Kind.LINK_BROKEN: "the Withings link stopped working ({value}); no more readings arrive. Please ask "
    "them to link their account again from their status page.",
    Kind.SUBSCRIPTION_LOST: "Withings stopped notifying us of new readings; the portal polls every few "
    "hours and tries to subscribe again.",
    Kind.LOW_BATTERY: "the cuff's battery is low.",
    Kind.CUFF_NOT_SYNCED: "the cuff has not synced since {since}.",
}


def deadline_sentence(deadline: dt.datetime, zone: str) -> str:
    local = deadline.astimezone(ZoneInfo(zone))
    return (
        f"Acknowledge by {local:%Y-%m-%d %H:%M} {local.tzname()} ({zone}; "
        f"{deadline.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC), with the outcome and a note; otherwise "
        "the next person in the study's safety plan is notified."
    )


@dataclass(frozen=True)
class Condition:
    episode_key: str
    detail: dict


def alert_recipients(*, study_id: int, site_id: int | None) -> list[str]:
    """Active coordinators of the study who see the participant's site."""
    site_q = Q(site__isnull=True) | (Q(site_id=site_id) if site_id is not None else Q(pk__in=[]))
    return list(
        StudyMembership.objects.filter(site_q, study_id=study_id, role=Role.COORDINATOR, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
        .distinct()
    )


def alert_url(alert_id: int) -> str:
    """The alert's page in the admin, absolute (for e-mails)."""
    return settings.PORTAL_BASE_URL + reverse("admin:measurements_alert_change", args=[alert_id])


def alert_notify(*, alert_id: int) -> int:
    """E-mail the alert (pseudonymous: the participant's code, never a name). Once per alert."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("participant", "study")
            .filter(pk=alert_id, notified_at__isnull=True)
            .first()
        )
        if alert is None:
            return 0
        recipients = alert_recipients(study_id=alert.study_id, site_id=alert.participant.site_id)
        code = alert.participant.code
        body = MESSAGES[alert.kind].format(**{"value": "", "since": "", **alert.detail})
        if alert.deadline_at is not None:
            body += f"\n\n{deadline_sentence(alert.deadline_at, alert.study.default_timezone)}"
        if recipients:
            send_mail(
                f"[Cohort portal] {alert.study.slug} {code}: {alert.get_kind_display()}",
                f"Participant {code} of {alert.study.name}: {body}\n\nOpen the alert to acknowledge "
                f"it: {alert_url(alert.pk)}",
                None,
                recipients,
                fail_silently=False,
            )
        Alert.objects.filter(pk=alert.pk).update(notified_at=now())
    return len(recipients)


def alert_raise(
    *,
    participant: Participant,
    kind: str,
    condition: Condition,
    plan: SafetyPlan | None = None,
    reading_at: dt.datetime | None = None,
) -> Alert | None:
    """Open an alert unless one of this kind is open for the participant (then count the
    occurrence). Returns the new alert, or None when the episode was already open. With a safety
    `plan` (BP readings) the alert gets its deadline and step 0 of the chain (the coordinators),
    and the participant is told what to do (the safety handlers, after commit)."""
    stamp = now()
    safety: dict = {}
    if plan is not None:
        deadline = step_deadline(plan, 0, stamp, participant.study.default_timezone)
        safety = {
            "safety_plan": plan,
            "reading_at": reading_at,
            "ack_deadline_at": deadline,
            "deadline_at": deadline,
        }
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                study_id=participant.study_id,
                participant=participant,
                kind=kind,
                episode_key=condition.episode_key[:64],
                detail=condition.detail,
                opened_at=stamp,
                last_seen_at=stamp,
                **safety,
            )
            if plan is not None:
                AlertEscalation.objects.create(
                    alert=alert, step=0, audience=SafetyPlan.Audience.COORDINATORS,
                    deadline_at=safety["deadline_at"], notified_at=stamp,
                )  # fmt: skip
    except IntegrityError:
        Alert.objects.filter(participant=participant, kind=kind, resolved_at__isnull=True).update(
            occurrences=F("occurrences") + 1, last_seen_at=stamp
        )
        return None
    audit_record(
        action="alert.raised",
        participant=participant,
        target=participant.code,
        detail={"alert": alert.pk, "kind": kind, **condition.detail},
    )
    transaction.on_commit(lambda: alert_notify(alert_id=alert.pk))
    if plan is not None:
        hooks.safety_alert_raised(alert.pk)
    return alert


def alert_resolve(*, alert: Alert, resolution: str = Alert.Resolution.CLEARED) -> bool:
    updated = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
        resolved_at=now(), resolution=resolution
    )
    if updated and resolution == Alert.Resolution.CLEARED:
        audit_record(
            action="alert.resolved",
            study=alert.study,
            participant=alert.participant,
            target=alert.participant.code,
            detail={"alert": alert.pk, "kind": alert.kind},
        )
    return bool(updated)


@transaction.atomic
def alert_acknowledge(*, actor, alert_id: int, note: str = "", outcome: str = "") -> Alert:
    """A coordinator saw the alert (and says what was done: for BP alerts an outcome and a note are
    required). Closes event alerts (severe, low readings), which stops their escalation; state
    alerts stay open until the condition clears. Audited."""
    alert = (
        Alert.objects.select_for_update(of=("self",)).select_related("participant", "study").get(pk=alert_id)
    )
    if not user_can(actor, alert, EDITORS):
        raise PermissionDenied("Only the study's coordinators acknowledge its alerts.")
    if alert.acknowledged_at is not None:
        raise ValidationError("This alert was already acknowledged.")
    if alert.kind in NOTE_REQUIRED and not note.strip():
        raise ValidationError(NOTE_REQUIRED_MESSAGE)
    if alert.kind in NOTE_REQUIRED and outcome not in Alert.Outcome.values:
        raise ValidationError(OUTCOME_REQUIRED_MESSAGE)
    if alert.kind not in NOTE_REQUIRED and outcome:
        raise ValidationError("Only severe and low readings are acknowledged with an outcome.")
    alert.acknowledged_by = actor
    alert.acknowledged_at = now()
    alert.note = note.strip()[:NOTE_MAX_LENGTH]
    alert.outcome = outcome
    fields = ["acknowledged_by", "acknowledged_at", "note", "outcome"]
    if alert.kind in Alert.EVENT_KINDS and alert.resolved_at is None:
        alert.resolved_at = alert.acknowledged_at
        alert.resolution = Alert.Resolution.ACKNOWLEDGED
        fields += ["resolved_at", "resolution"]
    alert.save(update_fields=fields)
    audit_record(
        actor=actor,
        action="alert.acknowledged",
        participant=alert.participant,
        target=alert.participant.code,
        detail={"alert": alert.pk, "kind": alert.kind, "outcome": outcome, "step": alert.step,
                "late": bool(alert.ack_deadline_at and alert.acknowledged_at > alert.ack_deadline_at),
                "note": alert.note[:500]},
    )  # fmt: skip
    return alert


@transaction.atomic
def alert_note_add(*, actor, alert_id: int, text: str) -> AlertNote:
    """Add to the alert's thread of notes (what happened next: a call back, a GP visit). Audited."""
    alert = Alert.objects.select_related("participant", "study").get(pk=alert_id)
    if not user_can(actor, alert, EDITORS):
        raise PermissionDenied("Only the study's coordinators add notes to its alerts.")
    text = text.strip()
    if not text:
        raise ValidationError("Write the note first: an empty note is not added.")
    note = AlertNote.objects.create(alert=alert, author=actor, text=text[:NOTE_MAX_LENGTH])
    audit_record(
        actor=actor,
        action="alert.note_added",
        participant=alert.participant,
        target=alert.participant.code,
        detail={"alert": alert.pk, "kind": alert.kind, "note_id": note.pk, "note": note.text[:500]},
    )
    return note


# -- severe and low readings (after ingestion): the study's safety plan ---------------------------


def is_crisis(systolic: Decimal, diastolic: Decimal, protocol: StudyProtocol | SafetyPlan) -> bool:
    """Above the thresholds: a safety plan's severe thresholds (or, for older callers, a protocol's)."""
    if isinstance(protocol, SafetyPlan):
        return protocol.is_severe(systolic, diastolic)
    return systolic > protocol.crisis_systolic or diastolic > protocol.crisis_diastolic


def alerts_check_readings(
    *,
    participant_id: int,
    readings: Iterable[tuple[dt.datetime, Decimal, Decimal] | tuple[dt.datetime, Decimal, Decimal, int]],
) -> Alert | None:
    """Raise a severe-reading alert for the most recent severe reading among fresh `readings` (and a
    low-reading alert when the study's plan sets a low threshold), by the study's safety plan.

    `readings`: (measured_at, systolic, diastolic[, quality_flags]). A hard-flagged reading (impossible
    values, e.g. 161/1) is never checked; a soft-flagged one (e.g. 220/110, pulse pressure above 100)
    is, and its alert says it was flagged and asks for a repeat measurement."""
    cutoff = now() - CRISIS_ALERT_MAX_AGE
    fresh = [(r[0], r[1], r[2], r[3] if len(r) > 3 else 0) for r in readings if r[0] >= cutoff]
    fresh = [r for r in fresh if quality.alertable(r[3])]
    if not fresh:
        return None
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    if participant.status not in MONITORED_STATUSES:
        return None
    plan = safety_plan_current(participant.study_id)
    raised = None
    for kind, matches in (
        (Kind.CRISIS, sorted(r for r in fresh if plan.is_severe(r[1], r[2]))),
        (Kind.LOW_BP, sorted(r for r in fresh if plan.is_low(r[1]))),
    ):
        if not matches:
            continue
        measured_at, systolic, diastolic, flags = matches[-1]
        value = f"{systolic:.0f}/{diastolic:.0f} mmHg at {measured_at:%Y-%m-%d %H:%M} UTC"
        detail = {
            "value": value,
            "systolic": str(systolic),
            "diastolic": str(diastolic),
            "count": len(matches),
        }
        if note := quality.flagged_note(flags):
            detail |= {"value": f"{value} — {note}", "quality_flags": flags, "flagged": note}
        alert = alert_raise(
            participant=participant,
            kind=kind,
            condition=Condition(f"reading:{measured_at.isoformat()}", detail),
            plan=plan,
            reading_at=measured_at,
        )
        raised = raised or alert
    return raised


# -- state conditions (periodic, and from the withings app) -------------------------------------


def _conditions(
    participants: list[Participant], protocol: StudyProtocol, at: dt.datetime
) -> dict[tuple[int, str], Condition]:
    ids = [p.pk for p in participants]
    last_reading = dict(
        BloodPressureReading.objects.filter(VALID_READINGS, participant_id__in=ids)
        .values("participant_id")
        .annotate(last=Max("measured_at"))
        .values_list("participant_id", "last")
        .order_by()
    )
    devices: dict[int, list[tuple[str, dt.datetime | None]]] = {}
    for pid, battery, session in Device.objects.filter(participant_id__in=ids).values_list(
        "participant_id", "battery", "last_session_at"
    ):
        devices.setdefault(pid, []).append((battery, session))
    found: dict[tuple[int, str], Condition] = {}
    for p in participants:
        if p.status not in MONITORED_STATUSES:
            continue
        if p.link_status in BROKEN_LINKS:
            found[(p.pk, Kind.LINK_BROKEN)] = Condition(
                f"link:{p.link_status}", {"value": p.get_link_status_display()}
            )
        tz = ZoneInfo(p.timezone)
        today = at.astimezone(tz).date()
        period = participant_period(p, protocol, p.study)
        ongoing = (
            period.start is not None and period.start <= today and (period.end is None or period.end >= today)
        )
        if ongoing:
            since = last_reading.get(p.pk)
            threshold = at - dt.timedelta(days=protocol.no_data_days)
            started = dt.datetime.combine(period.start, dt.time.min, tzinfo=tz)
            if (since or started) < threshold:
                label = f"{since.astimezone(tz):%Y-%m-%d %H:%M}" if since else f"the start ({period.start})"
                found[(p.pk, Kind.NO_DATA)] = Condition(
                    f"since:{(since or started).isoformat()}", {"since": label}
                )
        cuffs = devices.get(p.pk, [])
        if protocol.low_battery_alerts and any(b.strip().lower() in LOW_BATTERY_VALUES for b, _s in cuffs):
            found[(p.pk, Kind.LOW_BATTERY)] = Condition("battery:low", {})
        sessions = [s for _b, s in cuffs if s is not None]
        if ongoing and sessions and max(sessions) < at - dt.timedelta(days=protocol.cuff_not_synced_days):
            last = max(sessions)
            found[(p.pk, Kind.CUFF_NOT_SYNCED)] = Condition(
                f"session:{last.isoformat()}", {"since": f"{last.astimezone(tz):%Y-%m-%d %H:%M}"}
            )
    return found


@dataclass
class EvaluationResult:
    raised: int = 0
    resolved: int = 0


def alerts_evaluate(
    *,
    study_id: int,
    participant_ids: Iterable[int] | None = None,
    kinds: Iterable[str] = EVALUATED_KINDS,
    at: dt.datetime | None = None,
) -> EvaluationResult:
    """Raise what holds and is not open; resolve open alerts whose condition cleared."""
    at = at or now()
    kinds = tuple(kinds)
    protocol = protocol_for_study(study_id)
    qs = Participant.objects.select_related("study").filter(study_id=study_id).order_by("pk")
    if participant_ids is not None:
        qs = qs.filter(pk__in=list(participant_ids))
    result = EvaluationResult()
    batch = 2000
    participants = list(qs)
    for start in range(0, len(participants), batch):
        chunk = participants[start : start + batch]
        found = {k: c for k, c in _conditions(chunk, protocol, at).items() if k[1] in kinds}
        open_alerts = {
            (a.participant_id, a.kind): a
            for a in Alert.objects.select_related("participant", "study").filter(
                participant_id__in=[p.pk for p in chunk], kind__in=kinds, resolved_at__isnull=True
            )
        }
        by_id = {p.pk: p for p in chunk}
        for key, alert in open_alerts.items():
            if key not in found and alert_resolve(alert=alert):
                result.resolved += 1
        for (pid, kind), condition in found.items():
            if (pid, kind) in open_alerts:
                continue
            with transaction.atomic():
                if alert_raise(participant=by_id[pid], kind=kind, condition=condition):
                    result.raised += 1
    return result


def alerts_evaluate_link(*, participant_id: int) -> EvaluationResult:
    """After the participant's link state changed (called by the withings app)."""
    study_id = Participant.objects.values_list("study_id", flat=True).get(pk=participant_id)
    return alerts_evaluate(study_id=study_id, participant_ids=[participant_id], kinds=[Kind.LINK_BROKEN])


def alert_subscription_state(*, participant_id: int, lost: bool, reason: str = "") -> EvaluationResult:
    """The withings app reports whether the participant's notification subscription is lost."""
    participant = Participant.objects.select_related("study").get(pk=participant_id)
    result = EvaluationResult()
    open_alert = Alert.objects.filter(
        participant=participant, kind=Kind.SUBSCRIPTION_LOST, resolved_at__isnull=True
    ).first()
    holds = lost and participant.status in MONITORED_STATUSES and participant.link_status not in BROKEN_LINKS
    if holds and open_alert is None:
        with transaction.atomic():
            if alert_raise(
                participant=participant,
                kind=Kind.SUBSCRIPTION_LOST,
                condition=Condition("subscription:lost", {"value": reason[:200]}),
            ):
                result.raised = 1
    elif not holds and open_alert is not None and alert_resolve(alert=open_alert):
        result.resolved = 1
    return result
