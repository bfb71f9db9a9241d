"""Export jobs in the admin: the per-study export page, live progress, audited downloads."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from cohorts.admin_base import TenantAdmin, admin_page
from core.localtime import zoned_column
from measurements.exports import EXPORT_ROLES
from measurements.models import ExportJob

from . import views


@admin.register(ExportJob)
class ExportJobAdmin(TenantAdmin):
    changelist_title = "Exports"
    view_roles = EXPORT_ROLES
    edit_roles = frozenset()  # jobs are created on the export page, never edited
    list_display = [
        "requested",
        "study",
        "format",
        "status_progress",
        "rows_done",
        "site",
        "requested_by",
        "links",
    ]
    list_display_links = None
    list_filter = ["format", "status", ("study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["study", "site", "requested_by"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]
    requested = zoned_column("created_at", zone=None, description="requested")

    def has_add_permission(self, request):
        return self._has_role(request, EXPORT_ROLES)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status")
    def status_progress(self, job):
        if job.status == ExportJob.Status.DONE:
            return job.get_status_display()
        return format_html("{} ({}%)", job.get_status_display(), job.progress_percent)

    @admin.display(description="")
    def links(self, job):
        progress = reverse("admin:measurements_exportjob_progress", args=[job.pk])
        if job.status == ExportJob.Status.DONE:
            download = reverse("admin:measurements_exportjob_download", args=[job.pk])
            return format_html('<a href="{}">Details</a> · <a href="{}">Download</a>', progress, download)
        return format_html('<a href="{}">Progress</a>', progress)

    def add_view(self, request, form_url="", extra_context=None):
        return views.export_choose_study(request, self.admin_site)

    def get_urls(self):
        site = self.admin_site
        return [
            admin_page(site, "study/<slug:slug>/", views.export_page, "measurements_exportjob_study"),
            admin_page(site, "<int:pk>/progress/", views.export_progress, "measurements_exportjob_progress"),
            admin_page(
                site,
                "<int:pk>/progress.json",
                views.export_progress_json,
                "measurements_exportjob_progress_json",
            ),
            admin_page(site, "<int:pk>/download/", views.export_download, "measurements_exportjob_download"),
            *super().get_urls(),
        ]
