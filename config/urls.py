from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from config.health import healthz
from config.metrics import metrics_view

# The admin's own login page would bypass allauth's rate limits and MFA: send it through allauth.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("api.urls")),
    path("withings/", include("withings.urls")),
    path("messaging/", include("messaging.urls")),
    path("messaging/", include("messaging.link_urls")),
    path("", include("cohorts.urls")),
]
# MEDIA_ROOT is never served, not even by the dev server: it holds export packages and staged CSV
# uploads, which leave only through their views (role checked, downloads audited).
