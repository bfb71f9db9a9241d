"""Development WSGI app: Django plus the Withings sandbox mounted at /sandbox and the SMS sandbox at
/sms-sandbox (never in production),
and, when tasks run in-process, the embedded runner (retries and the beat schedule, `config.embedded`).

`make run` points WITHINGS_API_URL/WITHINGS_AUTH_URL here, so linking, notifications and sync run
end to end without the internet. The sandbox keeps its state in this process's memory.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.embedded import start_embedded_runner
from messaging.sandbox import SmsSandboxApp, SmsSandboxState
from withings.sandbox import SandboxApp
from withings.sandbox.demo import DemoSandboxState
from withings.sandbox.server import mount

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def build_sandbox() -> SandboxApp:
    state = DemoSandboxState(page_size=50)
    state.register_client(
        settings.WITHINGS_CLIENT_ID,
        settings.WITHINGS_CLIENT_SECRET,
        [f"{settings.PORTAL_BASE_URL}/withings/callback/"],
    )
    return SandboxApp(state)


def build_sms_sandbox() -> SmsSandboxApp:
    return SmsSandboxApp(
        SmsSandboxState(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            inbound_url=f"{settings.PORTAL_BASE_URL}/messaging/twilio/inbound/",
            callback_delay=1.0,
        )
    )


django_application = get_wsgi_application()
application = (
    mount(django_application, build_sandbox(), "/sandbox")
    if settings.WITHINGS_SANDBOX_MOUNTED
    else django_application
)
if settings.SMS_SANDBOX_MOUNTED:
    application = mount(application, build_sms_sandbox(), "/sms-sandbox")
start_embedded_runner()
