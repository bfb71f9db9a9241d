from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Participant messaging"

    def ready(self) -> None:
        from cohorts import hooks
        from core.ticking import tick_register

        from .safety import safety_alert_raised, staff_sms_send
        from .scheduler.run import reminders_tick
        from .services import status_link_issued
        from .tasks import withdraw_participant_task

        hooks.withdrawal_handlers.append(
            lambda participant_id: withdraw_participant_task.delay(participant_id)
        )
        # In-process (after commit): the token goes into the encrypted message body, never to the broker.
        hooks.status_link_handlers.append(status_link_issued)
        tick_register("messaging", reminders_tick)
        hooks.safety_alert_handlers.append(safety_alert_raised)
        hooks.staff_sms_senders.append(staff_sms_send)
