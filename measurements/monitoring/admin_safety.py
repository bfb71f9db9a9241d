"""The safety plan in the admin: each version read as the IRB-approved text; "add" writes a new version
(prefilled from the one in force), through `safety_plan_save` (validated, audited). Versions are never
changed or deleted — alerts point at the version they ran under."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from cohorts.admin_base import TenantAdmin
from measurements.models import SafetyPlan

from .safety import PLAN_FIELDS, approved_text, safety_plan_current, safety_plan_save


class SafetyPlanForm(forms.ModelForm):
    class Meta:
        model = SafetyPlan
        fields = ["study", *PLAN_FIELDS]
        widgets = {
            "severe_message": forms.Textarea(attrs={"rows": 4, "cols": 80}),
            "low_message": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            **{
                f"{kind}_message_{code}": forms.Textarea(attrs={"rows": 3, "cols": 80})
                for kind in ("severe", "low")
                for code in ("es", "fr")
            },
            "escalation": forms.Textarea(attrs={"rows": 3, "cols": 80}),
        }


@admin.register(SafetyPlan)
class SafetyPlanAdmin(TenantAdmin):
    study_wide_edits = True  # the study's plan: site-limited coordinators read it
    form = SafetyPlanForm
    list_display = ["study", "version_label", "thresholds", "deadline", "chain", "created_at", "created_by"]
    list_select_related = ["study", "created_by"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter)]
    ordering = ["study__name", "-version"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ["study", "version", "approved", "created_at", "created_by"]
        return ["study", *PLAN_FIELDS]

    def get_readonly_fields(self, request, obj=None):
        return ["study", "version", "approved", "created_at", "created_by"] if obj is not None else []

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        study_id = request.GET.get("study")
        if study_id and study_id.isdigit():
            current = safety_plan_current(int(study_id))
            for name in PLAN_FIELDS:
                value = getattr(current, name)
                initial[name] = json.dumps(value) if name == "escalation" else value
        return initial

    @admin.display(description="IRB-approved text")
    def approved(self, plan):
        return format_html(
            '<pre class="safety-plan-text" style="white-space: pre-wrap">{}</pre>', approved_text(plan)
        )

    @admin.display(description="version", ordering="version")
    def version_label(self, plan):
        return f"v{plan.version}"

    @admin.display(description="severe above / low below")
    def thresholds(self, plan):
        low = f"{plan.low_systolic}" if plan.low_systolic is not None else "—"
        return f"{plan.severe_systolic}/{plan.severe_diastolic} / {low}"

    @admin.display(description="acknowledge within")
    def deadline(self, plan):
        return f"{plan.ack_minutes} min" + (" (working hours)" if plan.working_hours_only else "")

    @admin.display(description="then")
    def chain(self, plan):
        return " → ".join(f"{to} ({minutes} min)" for to, minutes in plan.steps()[1:]) or "—"

    def save_model(self, request, obj, form, change):
        study = form.cleaned_data["study"]
        self.check_tenant_write(request, study.pk, None)
        saved = safety_plan_save(
            actor=request.user, study=study, values={n: form.cleaned_data.get(n) for n in PLAN_FIELDS}
        )
        obj.pk, obj.version, obj.study = saved.pk, saved.version, study
