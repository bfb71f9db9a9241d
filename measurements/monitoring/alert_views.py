"""The alert's admin pages: the alert itself (what, how urgent, how old, acknowledgement and the thread
of notes) and its acknowledgement. Reads through `scoped()`; writes through the alert services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.timezone import now

from cohorts.scoping import EDITORS, scoped, user_can
from measurements.models import Alert, AlertEscalation, AlertNote, SafetyPlan

from .alerts import (
    NOTE_MAX_LENGTH,
    NOTE_REQUIRED,
    NOTE_REQUIRED_MESSAGE,
    OUTCOME_REQUIRED_MESSAGE,
    alert_acknowledge,
    alert_note_add,
)
from .confirmation import confirmation_annotations, confirmation_text
from .display import age, bp_value, local_time
from .severity import Severity, alert_severity


class AcknowledgeForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome",
        choices=Alert.Outcome.choices,
        widget=forms.RadioSelect,
        required=False,
        help_text="What came of it. 'No action' needs its reason in the note.",
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        help_text="What was done (e.g. called the participant, advised to see their GP).",
    )

    def __init__(self, *args, alert: Alert, **kwargs):
        super().__init__(*args, **kwargs)
        self.alert = alert
        if alert.kind in NOTE_REQUIRED:
            self.fields["note"].label = "Note (required)"
            self.fields["outcome"].required = True
            self.fields["outcome"].error_messages["required"] = OUTCOME_REQUIRED_MESSAGE
        else:
            del self.fields["outcome"]

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if self.alert.kind in NOTE_REQUIRED and not note:
            raise ValidationError(NOTE_REQUIRED_MESSAGE)
        return note


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=NOTE_MAX_LENGTH,
        error_messages={"required": "Write the note first: an empty note is not added."},
        help_text="What happened next (a call back, a GP visit, a repeat reading).",
    )


def _visible_alert(request, pk: int, *related: str, **annotations) -> Alert:
    alerts = Alert.objects.select_related("participant", "study", *related).annotate(**annotations)
    return get_object_or_404(scoped(alerts, request.user), pk=pk)


def _next(request, default: str) -> str:
    target = request.GET.get("next") or ""
    return target if target.startswith("/admin/") else default


def alert_page(request, admin_site, model_admin, object_id):
    """The alert (the e-mail links here), its notes in order, and the forms to act on it."""
    at = now()
    alert = _visible_alert(
        request,
        object_id,
        "participant__site",
        "acknowledged_by",
        "safety_plan",
        rank=alert_severity(at),
        **confirmation_annotations(),
    )
    can_act = user_can(request.user, alert, EDITORS)
    form = NoteForm(request.POST or None)
    if request.method == "POST":
        if not can_act:
            raise PermissionDenied
        if form.is_valid():
            try:
                alert_note_add(actor=request.user, alert_id=alert.pk, text=form.cleaned_data["text"])
            except ValidationError as exc:
                form.add_error("text", exc)
            else:
                messages.success(request, "Note added.")
                return HttpResponseRedirect(request.path)
    zone = alert.participant.timezone
    notes = AlertNote.objects.filter(alert=alert).select_related("author")
    return TemplateResponse(
        request,
        "admin/measurements/monitoring/alert.html",
        {
            **admin_site.each_context(request),
            "title": f"{alert.get_kind_display()} — {alert.participant.code}",
            "alert": alert,
            "severity_label": Severity.LABELS[alert.rank],
            "severity_css": Severity.CSS.get(alert.rank, ""),
            "bp_value": bp_value(alert),
            "opened_ago": age(at - alert.opened_at),
            "opened_local": local_time(alert.opened_at, zone),
            "resolved_local": local_time(alert.resolved_at, zone) if alert.resolved_at else None,
            "acknowledged_local": local_time(alert.acknowledged_at, zone) if alert.acknowledged_at else None,
            "notes": [(n, local_time(n.created_at, zone)) for n in notes],
            "confirmation": confirmation_text(alert),
            "reading_local": local_time(alert.reading_at, zone) if alert.reading_at else None,
            "deadline_local": _study_time(alert.deadline_at, alert) if alert.deadline_at else None,
            "ack_deadline_local": _study_time(alert.ack_deadline_at, alert)
            if alert.ack_deadline_at
            else None,
            "escalations": [
                (e, _study_time(e.notified_at, alert), _study_time(e.deadline_at, alert))
                for e in AlertEscalation.objects.filter(alert=alert).order_by("step")
            ],
            "holder": _holder(alert),
            "can_act": can_act,
            "acknowledge_form": AcknowledgeForm(alert=alert),
            "note_form": form,
            "opts": model_admin.model._meta,
        },
    )


def _study_time(when, alert: Alert) -> str:
    """Deadlines are the study's (its working hours): shown in its zone."""
    return local_time(when, alert.study.default_timezone)


def _holder(alert: Alert) -> str | None:
    if alert.safety_plan is None:
        return None
    audience, _minutes = alert.safety_plan.steps()[min(alert.step, len(alert.safety_plan.steps()) - 1)]
    return str(dict(SafetyPlan.Audience.choices).get(audience, audience))


def alert_acknowledge_view(request, admin_site, pk: int):
    alert = _visible_alert(request, pk)
    if not user_can(request.user, alert, EDITORS):
        raise PermissionDenied
    form = AcknowledgeForm(request.POST or None, alert=alert)
    if request.method == "POST" and form.is_valid():
        try:
            alert_acknowledge(
                actor=request.user,
                alert_id=alert.pk,
                note=form.cleaned_data["note"],
                outcome=form.cleaned_data.get("outcome") or "",
            )
        except ValidationError as exc:
            messages.warning(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Alert for {alert.participant.code} acknowledged.")
        return HttpResponseRedirect(_next(request, reverse("admin:measurements_alert_changelist")))
    return TemplateResponse(
        request,
        "admin/measurements/monitoring/acknowledge.html",
        {
            **admin_site.each_context(request),
            "title": "Acknowledge alert",
            "alert": alert,
            "bp_value": bp_value(alert),
            "opened_local": local_time(alert.opened_at, alert.participant.timezone),
            "form": form,
        },
    )
