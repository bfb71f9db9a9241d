"""A sandbox whose new accounts come with a history: for the demo server and browser tests."""

from __future__ import annotations

from typing import Any

from .state import SandboxState

DEMO_HISTORY_DAYS = 30


class DemoSandboxState(SandboxState):
    """Every account created on the consent page comes with ``history_days`` of synthetic
    readings (deterministic per user id), so linking shows a back-filled history."""

    def __init__(self, *args: Any, history_days: int = DEMO_HISTORY_DAYS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.history_days = history_days

    def create_user(self, userid: str | None = None, **kwargs: Any) -> str:
        uid = super().create_user(userid, **kwargs)
        if self.history_days:
            self.generate_readings(
                uid, start=self.now() - self.history_days * 86400, days=self.history_days, seed=int(uid)
            )
        return uid
