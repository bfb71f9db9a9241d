"""Development WSGI app: Django plus the Withings sandbox mounted at /sandbox (never in production).

`make run` points WITHINGS_API_URL/WITHINGS_AUTH_URL here, so linking, notifications and sync run
end to end without the internet. The sandbox keeps its state in this process's memory.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from withings.sandbox import SandboxApp, SandboxState
from withings.sandbox.server import mount

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

DEMO_HISTORY_DAYS = 30


class DemoSandboxState(SandboxState):
    """Every Withings account created on the sandbox's consent page comes with a month of
    synthetic readings (deterministic per user), so linking shows a back-filled history."""

    def create_user(self, userid: str | None = None, **kwargs):
        uid = super().create_user(userid, **kwargs)
        self.generate_readings(
            uid, start=self.now() - DEMO_HISTORY_DAYS * 86400, days=DEMO_HISTORY_DAYS, seed=int(uid)
        )
        return uid


def build_sandbox() -> SandboxApp:
    state = DemoSandboxState(page_size=50)
    state.register_client(
        settings.WITHINGS_CLIENT_ID,
        settings.WITHINGS_CLIENT_SECRET,
        [f"{settings.PORTAL_BASE_URL}/withings/callback/"],
    )
    return SandboxApp(state)


django_application = get_wsgi_application()
application = (
    mount(django_application, build_sandbox(), "/sandbox")
    if settings.WITHINGS_SANDBOX_MOUNTED
    else django_application
)
