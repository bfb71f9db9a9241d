from django.urls import path

from . import views, webhooks

urlpatterns = [
    path("twilio/status/", webhooks.twilio_status, name="messaging_twilio_status"),
    path("twilio/inbound/", webhooks.twilio_inbound, name="messaging_twilio_inbound"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="messaging_unsubscribe"),
]
