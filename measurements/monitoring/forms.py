"""The protocol's admin form: a change of the rules takes effect from a chosen day and is applied
only once its impact (participants, days, expected readings before and after) has been shown and
confirmed. Until then the form is invalid, so nothing is saved."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from measurements.models import StudyProtocol
from measurements.models.monitoring import ProtocolRules

from .services import (
    ProtocolImpact,
    protocol_change_impact,
    protocol_check_effective_from,
    rules_changed,
    study_today,
)

CONFIRM_MESSAGE = "Review the impact of this change below, then tick “Apply” and save again."


class StudyProtocolForm(forms.ModelForm):
    effective_from = forms.DateField(
        required=False,
        help_text="First participant-local day the changed rules apply to (default: today). "
        "Days before keep the rules they ran under.",
    )
    confirm = forms.BooleanField(
        required=False, label="Apply", help_text="I have reviewed the impact shown above: apply the change."
    )

    class Meta:
        model = StudyProtocol
        fields = [
            "study",
            *ProtocolRules.RULE_FIELDS,
            "min_valid_readings",
            "adherence_target_percent",
            "guideline",
            "home_systolic_threshold",
            "home_diastolic_threshold",
            "crisis_systolic",
            "crisis_diastolic",
            "no_data_days",
            "cuff_not_synced_days",
            "low_battery_alerts",
        ]

    impact: ProtocolImpact | None = None

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None or self.errors:
            return cleaned
        edited = StudyProtocol(pk=self.instance.pk, study=self.instance.study)
        for name in ProtocolRules.RULE_FIELDS:
            setattr(edited, name, cleaned.get(name))
        if not rules_changed(edited):
            return cleaned
        effective_from = cleaned.get("effective_from") or study_today(edited)
        cleaned["effective_from"] = effective_from
        try:
            protocol_check_effective_from(protocol=edited, effective_from=effective_from)
        except ValidationError as exc:
            self.add_error(None, exc)
            return cleaned
        self.impact = protocol_change_impact(protocol=edited, effective_from=effective_from)
        if not cleaned.get("confirm"):
            raise ValidationError(CONFIRM_MESSAGE, code="confirm")
        return cleaned
