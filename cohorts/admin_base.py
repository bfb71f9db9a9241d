"""The tenant-scoped base for every admin class of the project.

Rows come through `scoping.scoped()`; permissions come from study roles, not Django model
permissions: investigators read, data managers read (and export), coordinators edit. Foreign-key
choices are limited to what the user may edit, and every save is re-checked against the roles.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.urls import URLPattern, path

from .models import Role, StudyMembership
from .scoping import ALL_ROLES, EDITORS, memberships, scoped, tenant_paths, user_can


def _request_membership_rows(request) -> list[StudyMembership]:
    """The request user's memberships (with study and site), loaded once per request."""
    cached = getattr(request, "_portal_membership_rows", None)
    if cached is None:
        cached = list(memberships(request.user).select_related("study", "site").order_by("study__name"))
        request._portal_membership_rows = cached
    return cached


def request_memberships(request) -> list[tuple[int, int | None, str]]:
    """(study_id, site_id, role) of the request's user, loaded once per request."""
    return [(m.study_id, m.site_id, m.role) for m in _request_membership_rows(request)]


def scope_summary(request) -> list[str]:
    """What the user may see, one line per study, for the banner on every staff page: e.g.
    "Demo study — North clinic only (Coordinator)". Operators see every study."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return []
    if user.is_superuser:
        return ["Operator — all studies and sites"]
    return [
        f"{m.study.name} — {f'{m.site.name} only' if m.site_id else 'all sites'} ({m.get_role_display()})"
        for m in _request_membership_rows(request)
    ]


def edit_scope_message(request, roles=EDITORS) -> str:
    """Where the user may add or change records, for a form error instead of a refusal after saving."""
    places = [
        f"{m.study.name} — {m.site.name}" if m.site_id else f"{m.study.name} (all sites)"
        for m in _request_membership_rows(request)
        if m.role in roles
    ]
    if not places:
        return "You cannot add or change records here: your role is read-only."
    return f"You can only add or change records at: {'; '.join(places)}."


def may_act_in(request, study_id: int | None, site_id: int | None, roles=EDITORS) -> bool:
    """May the user act with `roles` on a row of `study_id` at `site_id` (None: no site)?"""
    user = request.user
    if user.is_superuser and user.is_active:
        return True
    for m_study, m_site, m_role in request_memberships(request):
        if m_study == study_id and m_role in roles and (m_site is None or m_site == site_id):
            return True
    return False


def admin_page(site: admin.AdminSite, pattern: str, view, name: str) -> URLPattern:
    """A page of the admin at `pattern`: `view(request, site, **kwargs)` behind the site's login."""
    return path(pattern, site.admin_view(lambda request, **kw: view(request, site, **kw)), name=name)


def label_split_widget(formfield: forms.Field) -> None:
    """A date-and-time field draws two inputs under one <label> that names neither (Django points
    it nowhere since 4.0): give each input its own accessible name, "Expires at: date" / ": time"."""
    widget = formfield.widget
    if isinstance(widget, forms.SplitDateTimeWidget):
        date, time = widget.widgets
        date.attrs["aria-label"] = f"{formfield.label}: date"
        time.attrs["aria-label"] = f"{formfield.label}: time"


class LabelledInlineFormSet(BaseInlineFormSet):
    """A tabular inline names its fields only in the column headers: every input gets its column's
    label and its row as accessible name ("Text, row 2"), the delete box included."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        row = "new row" if index is None else f"row {index + 1}"
        for field in form.fields.values():
            field.widget.attrs.setdefault("aria-label", f"{field.label}, {row}")
            label_split_widget(field)


class TenantAdmin(admin.ModelAdmin):
    view_roles = ALL_ROLES
    edit_roles = EDITORS
    delete_roles: frozenset[str] = frozenset()  # superusers only, unless a subclass says so
    # Rows that belong to the whole study (its sites, consent text, protocol): only members over the
    # whole study may add, change or delete them; a site-limited coordinator reads them.
    study_wide_edits = False
    show_full_result_count = False

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user, self.view_roles)

    def _has_role(self, request, roles) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        if request.user.is_superuser:
            return True
        return any(role in roles for _s, _site, role in request_memberships(request))

    def _has_write_role(self, request, roles) -> bool:
        if not self.study_wide_edits or request.user.is_superuser:
            return self._has_role(request, roles)
        return self._has_role(request, roles) and any(
            role in roles and site is None for _s, site, role in request_memberships(request)
        )

    def _obj_allowed(self, request, obj, roles) -> bool:
        if not self._has_role(request, roles):
            return False
        return obj is None or user_can(request.user, obj, roles)

    def _obj_writable(self, request, obj, roles) -> bool:
        if not self._has_write_role(request, roles):
            return False
        if obj is None or not self.study_wide_edits:
            return self._obj_allowed(request, obj, roles)
        return may_act_in(request, self.tenant_ids(obj)[0], None, roles)

    def has_module_permission(self, request):
        return self._has_role(request, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._obj_allowed(request, obj, self.view_roles)

    def has_add_permission(self, request):
        return self._has_write_role(request, self.edit_roles)

    def has_change_permission(self, request, obj=None):
        return self._obj_writable(request, obj, self.edit_roles)

    def has_delete_permission(self, request, obj=None):
        if request.user.is_superuser and request.user.is_active:
            return True
        return bool(self.delete_roles) and self._obj_writable(request, obj, self.delete_roles)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The model's form, refusing with a message (never a 403 after filling it in) a record the
        user may not write: e.g. a participant without a site from a coordinator limited to a site."""
        form = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class TenantCheckedForm(form):  # type: ignore[valid-type,misc]
            def _post_clean(self):
                super()._post_clean()
                model_admin.check_form_scope(request, self)

        TenantCheckedForm.__name__ = form.__name__
        return TenantCheckedForm

    def check_form_scope(self, request, form) -> None:
        if form.errors:
            return
        study_id, site_id = self.tenant_ids(form.instance)
        if self.study_wide_edits:
            site_id = None
        if study_id is not None and not may_act_in(request, study_id, site_id, self.edit_roles):
            form.add_error("site" if "site" in form.fields else None, edit_scope_message(request))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None:
            label_split_widget(formfield)
        return formfield

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if getattr(related, "TENANT_PATHS", None) is not None:
            kwargs["queryset"] = scoped(related._default_manager.all(), request.user, self.edit_roles)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def check_tenant_write(self, request, study_id: int | None, site_id: int | None) -> None:
        if self.study_wide_edits:
            site_id = None
        if not may_act_in(request, study_id, site_id, self.edit_roles):
            raise PermissionDenied("You cannot change records of this study or site.")

    def tenant_ids(self, obj) -> tuple[int | None, int | None]:
        """The (study id, site id) a not-yet-saved object would belong to."""
        study_path, site_path = tenant_paths(type(obj))

        def follow(path: str | None):
            if path is None:
                return None
            value = obj
            parts = path.split("__")
            for part in parts[:-1]:
                value = getattr(value, part, None)
                if value is None:
                    return None
            last = parts[-1]
            return value.pk if last == "pk" else getattr(value, f"{last}_id", None)

        return follow(study_path), follow(site_path)


READ_ONLY_ROLES = frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER})


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows the study's staff read and nobody changes here, superusers included: services write them
    (audit events, consent records, Withings links, monitoring and alerts)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
