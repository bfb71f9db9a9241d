"""REDCap in the admin: a study's project settings (data managers edit; the token is never shown) and
the push log (what each push sent and what REDCap answered)."""

from __future__ import annotations

from django.contrib import admin

from cohorts.admin_base import ReadOnlyTenantAdmin, TenantAdmin
from cohorts.models import Role

from .forms import RedcapProjectForm, map_field_names
from .models import RedcapProject, RedcapPushLog
from .services import redcap_project_save

VIEW_ROLES = frozenset({Role.DATA_MANAGER, Role.COORDINATOR})
EDIT_ROLES = frozenset({Role.DATA_MANAGER})


@admin.register(RedcapProject)
class RedcapProjectAdmin(TenantAdmin):
    form = RedcapProjectForm
    view_roles = VIEW_ROLES
    edit_roles = EDIT_ROLES
    delete_roles = EDIT_ROLES
    study_wide_edits = True
    list_display = ["study", "mode", "instrument", "event", "auto_push", "last_push_at", "checked_at"]
    list_select_related = ["study"]
    readonly_fields = ["record_id_field", "checked_at", "last_push_at"]
    view_only_fields = [
        "study", "api_url", "record_prefix", "event", "mode", "instrument", "period_days", "mapping",
        "auto_push", "push_every_hours", "record_id_field", "checked_at", "last_push_at",
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self.view_only_fields
        return self.readonly_fields

    @admin.display(description="field map")
    def mapping(self, obj):
        return ", ".join(f"{source} → {field}" for source, field in sorted(obj.field_map.items())) or "—"

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return [(None, {"fields": self.view_only_fields})]  # never the token, not even its input
        return [
            (None, {"fields": ["study", "api_url", "token", "record_prefix", "event"]}),
            ("What is sent", {"fields": ["mode", "instrument", "period_days"]}),
            (
                "Readings mode: REDCap field for each value",
                {"fields": map_field_names(RedcapProject.Mode.READINGS)},
            ),
            (
                "Summary mode: REDCap field for each value",
                {"fields": map_field_names(RedcapProject.Mode.SUMMARY)},
            ),
            ("Schedule", {"fields": ["auto_push", "push_every_hours", "batch_size"]}),
            ("Last check", {"fields": self.get_readonly_fields(request, obj)}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The map inputs are the form's own fields, not the model's.
        kwargs["fields"] = [f for f in RedcapProjectForm.Meta.fields if f not in kwargs.get("exclude", ())]
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, obj.study_id, None)
        assert form.check is not None
        redcap_project_save(
            actor=request.user,
            project=obj,
            check=form.check,
            changed=[name for name in form.changed_data if name != "token"],
            token_changed=form.token_given,
        )


@admin.register(RedcapPushLog)
class RedcapPushLogAdmin(ReadOnlyTenantAdmin):
    view_roles = VIEW_ROLES | {Role.INVESTIGATOR}
    list_display = [
        "started_at", "study", "trigger", "status", "rows_sent", "rows_unchanged", "records_reported",
        "retries", "duration", "short_error",
    ]  # fmt: skip
    list_filter = ["status", ("study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["study"]
    fields = [
        "study", "trigger", "actor", "status", "since", "rows_considered", "rows_unchanged", "rows_sent",
        "records_reported", "batches", "retries", "error", "started_at", "finished_at",
    ]  # fmt: skip

    @admin.display(description="seconds")
    def duration(self, log):
        return log.duration_seconds

    @admin.display(description="REDCap said")
    def short_error(self, log):
        return log.error[:120]
