from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CohortsConfig(AppConfig):
    name = "cohorts"
    verbose_name = "Studies and participants"

    def ready(self) -> None:
        from .dbsession import apply_session_settings

        connection_created.connect(apply_session_settings, dispatch_uid="cohorts.dbsession")
