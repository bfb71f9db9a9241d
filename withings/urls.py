from django.urls import path

from . import views

urlpatterns = [
    path("connect/", views.connect, name="withings_connect"),
    path("callback/", views.callback, name="withings_callback"),
    path("connected/", views.connected, name="withings_connected"),
]
