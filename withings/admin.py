"""Coordinators see connections read-only (never a token); operators manage per-study apps."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from cohorts.admin_base import ReadOnlyTenantAdmin, TenantAdmin
from core.localtime import zoned_column

from .models import WithingsApp, WithingsConnection

TOKEN_FIELDS = ("access_token", "refresh_token")


@admin.register(WithingsConnection)
class WithingsConnectionAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "participant_code", "study", "status", "subscription_state", "last_refresh",
        "access_expires", "last_sync", "last_error",
    ]  # fmt: skip
    last_refresh = zoned_column("last_refresh_at", zone="participant", description="last refresh")
    access_expires = zoned_column("access_expires_at", zone="participant", description="access expires")
    last_sync = zoned_column("last_sync_at", zone="participant", description="last sync")
    list_filter = ["status", "subscription_state"]
    list_select_related = ["participant__study"]
    search_fields = ["participant__code"]
    fields = [
        "participant", "status", "withings_userid", "scope", "linked_at", "token_issued_at",
        "access_expires_at", "refresh_due_at", "last_refresh_at", "refresh_failures", "last_error",
        "last_error_at", "sync_watermark", "last_sync_at", "last_notification_at",
        "subscription_state", "subscribed_at", "created_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*TOKEN_FIELDS)

    @admin.display(description="participant", ordering="participant__code")
    def participant_code(self, obj):
        return obj.participant.code

    @admin.display(description="study", ordering="participant__study__name")
    def study(self, obj):
        return obj.participant.study.slug


class WithingsAppForm(forms.ModelForm):
    new_client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown. Leave empty to keep the current secret.",
    )

    class Meta:
        model = WithingsApp
        fields = ["study", "client_id"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_client_secret"):
            self.add_error("new_client_secret", "A client secret is required.")
        return cleaned

    def save(self, commit=True):
        if secret := self.cleaned_data.get("new_client_secret"):
            self.instance.client_secret = secret
        return super().save(commit=commit)


@admin.register(WithingsApp)
class WithingsAppAdmin(TenantAdmin):
    """Operators (superusers) only: app credentials are installation configuration."""

    form = WithingsAppForm
    edit_roles = frozenset()
    list_display = ["study", "client_id", "updated_at"]
    list_select_related = ["study"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("client_secret")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser
