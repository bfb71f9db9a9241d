"""Extension points for the layers above cohorts (which cohorts itself must not import).

withings and measurements register callables here in their AppConfig.ready():
- ``withdrawal_handlers``: called (after commit) with the participant id when a participant
  withdraws — revoke the Withings grant and subscription, purge readings if the consent says so;
- ``status_providers``: called with the participant, return a dict merged into the participant's
  status page context (last reading, readings this week and target, link details).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

withdrawal_handlers: list[Callable[[int], None]] = []
status_providers: list[Callable[[Any], dict[str, Any]]] = []


def status_context(participant) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for provider in status_providers:
        context.update(provider(participant))
    return context
