"""Withings CSV import in the admin: coordinators pick a participant, upload, preview, confirm."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html

from cohorts.admin_base import ReadOnlyTenantAdmin
from cohorts.models import Role
from measurements.models import WithingsCsvImport

from . import views

IMPORT_ROLES = frozenset({Role.COORDINATOR})


@admin.register(WithingsCsvImport)
class WithingsCsvImportAdmin(ReadOnlyTenantAdmin):
    changelist_title = "Withings CSV import — participants"
    view_roles = IMPORT_ROLES
    edit_roles = IMPORT_ROLES
    list_display = ["code", "study", "site", "status", "timezone", "import_link"]
    list_display_links = None
    list_filter = [("study", admin.RelatedOnlyFieldListFilter), "status"]
    search_fields = ["code"]
    list_select_related = ["study", "site"]

    @admin.display(description="")
    def import_link(self, participant):
        url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])
        return format_html('<a class="button" href="{}">Import CSV…</a>', url)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/import/",
                wrap(lambda request, pk: views.import_page(request, self, pk)),
                name="measurements_withingscsvimport_import",
            ),
            *super().get_urls(),
        ]
