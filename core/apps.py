from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Shared plumbing"

    def ready(self) -> None:
        from .dbsession import apply_session_settings

        connection_created.connect(apply_session_settings, dispatch_uid="core.dbsession")
