from django.urls import path

from . import views

urlpatterns = [
    path("enroll/invite/<str:token>/", views.enroll_invitation, name="enroll_invitation"),
    path("enroll/consent/", views.enroll_consent, name="enroll_consent"),
    path("enroll/consent/pdf/", views.enroll_consent_pdf, name="enroll_consent_pdf"),
    path("enroll/connect/", views.enroll_connect, name="enroll_connect"),
    path("enroll/<slug:slug>/", views.enroll_open, name="enroll_open"),
    path("p/<str:token>/", views.participant_status, name="participant_status"),
    path("p/<str:token>/language/", views.participant_language, name="participant_language"),
    path("p/<str:token>/link/", views.participant_relink, name="participant_relink"),
    path("p/<str:token>/contact/", views.participant_contact, name="participant_contact"),
    path("p/<str:token>/consent/", views.participant_consent_copy, name="participant_consent_copy"),
    path("p/<str:token>/consent/pdf/", views.participant_consent_pdf, name="participant_consent_pdf"),
    path("p/<str:token>/withdraw/", views.participant_withdraw, name="participant_withdraw"),
]
