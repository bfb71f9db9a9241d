from django.urls import path

from . import views, webhook

urlpatterns = [
    path("connect/", views.connect, name="withings_connect"),
    path("callback/", views.callback, name="withings_callback"),
    path("connected/", views.connected, name="withings_connected"),
    path("notify/<str:secret>/", webhook.notify, name="withings_notify"),
]
