"""Celery tasks of messaging: thin wrappers taking ids (never a token, address or number)."""

from __future__ import annotations

from celery import shared_task

from . import dispatch, services


@shared_task(name="messaging.dispatch_due", acks_late=False, ignore_result=True)
def dispatch_due_task() -> int:
    """Beat, every minute: send whatever is due (rules' messages, retries after transient errors),
    and erase the contact details a lost withdrawal task left behind."""
    services.withdrawn_contacts_erase()
    return dispatch.dispatch_due()


@shared_task(name="messaging.send_message", ignore_result=True)
def send_message_task(message_id: int) -> str | None:
    """Send one message now (the private link); a no-op if the sweep got to it first."""
    return dispatch.send_message(message_id)


@shared_task(name="messaging.withdraw_participant", ignore_result=True)
def withdraw_participant_task(participant_id: int) -> str:
    return services.participant_withdrawn(participant_id)
