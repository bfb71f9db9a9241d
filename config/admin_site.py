"""The project's admin site: the index is the staff home (their studies, today's worklist, their
exports); Django's list of models stays at /admin/models/."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from cohorts.admin_base import scope_summary
from measurements.home import staff_home


class PortalAdminSite(admin.AdminSite):
    site_header = "Cohort portal"
    site_title = "Cohort portal"
    index_title = "Site administration"
    index_template = "admin/models_index.html"  # Django's app list, at /admin/models/
    site_url = None  # no "View site" link: the portal has no public home page (/ is a 404)

    def each_context(self, request):
        # Every staff page names what its user may see ("North clinic only"): see base_site.html.
        return {**super().each_context(request), "portal_scope": scope_summary(request)}

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
