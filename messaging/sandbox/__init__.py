"""A fake SMS gateway speaking Twilio's Messages API, for development and tests: like the Withings
sandbox it imports nothing of ours, and only config, demo, tests and bench import it.

It accepts ``Messages.json`` creates (basic auth), answers with a ``sid``, posts signed status
callbacks ("sent", then "delivered") to the ``StatusCallback``, shows the texts per number on a page
and lets a tester reply as that number (a signed inbound webhook to the portal; TwiML answers are
shown as texts back). STOP blocks further texts to the number (error 21610) until START, like Twilio.
"""

from .app import SmsSandboxApp
from .server import RunningSmsSandbox, start_sms_sandbox
from .state import SmsSandboxState, twilio_signature

__all__ = ["RunningSmsSandbox", "SmsSandboxApp", "SmsSandboxState", "start_sms_sandbox", "twilio_signature"]
