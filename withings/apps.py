from django.apps import AppConfig


class WithingsConfig(AppConfig):
    name = "withings"
    verbose_name = "Withings link"
