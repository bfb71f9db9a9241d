from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.health import healthz

# The admin's own login page would bypass allauth's rate limits and MFA: send it through allauth.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("withings/", include("withings.urls")),
    path("", include("cohorts.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
