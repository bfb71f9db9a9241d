"""The project's admin site: the index is the staff home (their studies, today's worklist, their
exports); Django's list of models stays at /admin/models/."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from measurements.home import staff_home


class PortalAdminSite(admin.AdminSite):
    site_header = "Cohort portal"
    site_title = "Cohort portal"
    index_title = "Site administration"
    index_template = "admin/models_index.html"  # Django's app list, at /admin/models/

    def index(self, request, extra_context=None):
        context = {
            **self.each_context(request),
            "title": "Home",
            "subtitle": None,
            "home": staff_home(user=request.user),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/home.html", context)

    def model_index(self, request, extra_context=None):
        return super().index(request, extra_context)

    def get_urls(self):
        return [path("models/", self.admin_view(self.model_index), name="models"), *super().get_urls()]
