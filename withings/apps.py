from django.apps import AppConfig


class WithingsConfig(AppConfig):
    name = "withings"
    verbose_name = "Withings link"

    def ready(self) -> None:
        from cohorts import hooks

        from . import checks  # noqa: F401 — registers the rate-budget check
        from .tasks import withdraw_participant

        hooks.withdrawal_handlers.append(lambda participant_id: withdraw_participant.delay(participant_id))
