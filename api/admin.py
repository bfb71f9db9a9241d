"""API tokens in the admin: each staff member sees and manages their own (operators see all).

The token is shown once, on the page that answers the creation, and never again: only its SHA-256
is stored. Tokens are revoked, not deleted, so the audit log keeps pointing at something.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils.timezone import now

from cohorts.admin_base import request_memberships
from measurements.exports import EXPORT_ROLES

from .models import AccessToken
from .services import access_token_create, access_token_revoke

SHOWN = [
    "name",
    "prefix",
    "user",
    "deidentified_only",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
]
LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class AccessTokenForm(forms.ModelForm):
    lifetime = forms.TypedChoiceField(choices=LIFETIMES, coerce=int, initial=90, label="Expires after")

    class Meta:
        model = AccessToken
        fields = ["name", "deidentified_only"]


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    form = AccessTokenForm
    list_display = [
        "name",
        "prefix",
        "user",
        "deidentified_only",
        "created_at",
        "expires_at",
        "state",
        "last_used_at",
    ]
    list_select_related = ["user"]
    actions = ["revoke"]
    fields = ["name", "deidentified_only", "lifetime"]

    def _may_hold(self, request) -> bool:
        user = request.user
        # The memberships the request already loaded (the admin's nav asks on every page): no query.
        return (
            user.is_active
            and user.is_staff
            and (
                user.is_superuser
                or any(role in EXPORT_ROLES for _study, _site, role in request_memberships(request))
            )
        )

    def has_module_permission(self, request):
        return self._may_hold(request)

    def has_view_permission(self, request, obj=None):
        return self._may_hold(request) and (
            obj is None or obj.user_id == request.user.pk or request.user.is_superuser
        )

    def has_add_permission(self, request):
        return self._may_hold(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else SHOWN

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.get_readonly_fields(request, obj)

    @admin.display(description="state")
    def state(self, token: AccessToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "active" if token.expires_at > now() else "expired"

    @admin.action(description="Revoke the selected tokens", permissions=["view"])
    def revoke(self, request, queryset):
        for token in queryset.select_related("user"):
            access_token_revoke(actor=request.user, token=token)
        messages.success(request, "Revoked: they stop working at once.")

    def save_model(self, request, obj, form, change):  # the service saves (see add_view)
        raise NotImplementedError

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        form = AccessTokenForm(request.POST)
        if form.is_valid():
            try:
                token, plaintext = access_token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    expires_at=now() + dt.timedelta(days=form.cleaned_data["lifetime"]),
                    deidentified_only=form.cleaned_data["deidentified_only"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                context = {**self.admin_site.each_context(request), "title": "Your new API token",
                           "token": token, "plaintext": plaintext, "opts": self.model._meta}  # fmt: skip
                response = TemplateResponse(request, "admin/api/token_created.html", context)
                response["Cache-Control"] = "no-store"
                return response
        return super().add_view(request, form_url, extra_context)
