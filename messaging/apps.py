from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Participant messaging"

    def ready(self) -> None:
        from core.ticking import tick_register

        from .scheduler.run import reminders_tick

        tick_register("messaging", reminders_tick)
