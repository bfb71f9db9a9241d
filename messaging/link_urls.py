from django.urls import path

from . import link_views

urlpatterns = [
    path("m/<str:token>/", link_views.participant_link, name="messaging_participant_link"),
]
