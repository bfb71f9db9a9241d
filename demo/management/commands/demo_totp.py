import time

from allauth.mfa import app_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management.base import BaseCommand, CommandError

from demo.studies import DEMO_STAFF, demo_totp_secret


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo account (demo accounts only)."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        if email not in {s.email for s in DEMO_STAFF}:
            raise CommandError(f"{email} is not a demo account.")
        counter = int(time.time()) // app_settings.TOTP_PERIOD
        self.stdout.write(format_hotp_value(hotp_value(demo_totp_secret(email), counter)))
