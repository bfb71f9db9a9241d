"""Extension points for the layers above cohorts (which cohorts itself must not import).

withings and measurements register callables here in their AppConfig.ready():
- ``withdrawal_handlers``: called (after commit) with the participant id when a participant
  withdraws — revoke the Withings grant and subscription, purge readings if the consent says so;
- ``status_providers``: called with the participant, return a dict merged into the participant's
  status page context (last reading, readings this week and target, link details);
- ``status_link_handlers``: called in-process after commit with the participant id and the new
  private-link token when one is issued (consent, reissue) — messaging sends it to the participant.
  The token must not leave the process except inside an encrypted row.
- ``safety_alert_handlers``: called (after commit) with the id of a severe/low-reading alert just
  raised under the study's safety plan — messaging tells the participant what to do;
- ``staff_sms_senders``: called with (E.164 number, text) to text a staff member (a safety
  escalation); messaging sends it through the SMS backend. Returns a provider id or raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

withdrawal_handlers: list[Callable[[int], None]] = []
status_providers: list[Callable[[Any], dict[str, Any]]] = []
status_link_handlers: list[Callable[[int, str], Any]] = []
safety_alert_handlers: list[Callable[[int], Any]] = []
staff_sms_senders: list[Callable[[str, str], Any]] = []


def safety_alert_raised(alert_id: int) -> None:
    """Run the safety handlers once the current transaction commits (at once outside one)."""
    for handler in safety_alert_handlers:
        transaction.on_commit(lambda h=handler: h(alert_id))


def status_link_issued(participant_id: int, token: str) -> None:
    """Run the status-link handlers once the current transaction commits (at once outside one)."""
    for handler in status_link_handlers:
        transaction.on_commit(lambda h=handler: h(participant_id, token))


def status_context(participant) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for provider in status_providers:
        context.update(provider(participant))
    return context
