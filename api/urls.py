from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    path("schema/", views.schema, name="schema"),
    path("openapi.json", views.schema, name="openapi"),
    path("studies/", views.studies, name="studies"),
    path("studies/<slug:slug>/readings/", views.readings, name="readings"),
    path("studies/<slug:slug>/exports/", views.exports, name="exports"),
    path("exports/<uuid:uuid>/", views.export_status, name="export_status"),
    path("exports/<uuid:uuid>/file/", views.export_file, name="export_file"),
]
