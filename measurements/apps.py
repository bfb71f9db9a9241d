from django.apps import AppConfig


class MeasurementsConfig(AppConfig):
    name = "measurements"
    verbose_name = "Measurements"

    def ready(self) -> None:
        from cohorts import hooks
        from core.ticking import tick_register

        from .monitoring.escalation import escalations_tick
        from .monitoring.next_steps import next_steps_context
        from .monitoring.safety_status import safety_status_context
        from .readings.selectors import participant_status_summary
        from .readings.withdrawal import readings_purge_on_withdrawal

        hooks.withdrawal_handlers.append(readings_purge_on_withdrawal)
        hooks.status_providers.append(participant_status_summary)
        hooks.status_providers.append(next_steps_context)
        hooks.status_providers.append(safety_status_context)
        tick_register("safety", escalations_tick)
