from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.messaging import seed_messaging
from demo.safety import seed_safety
from demo.studies import DEMO_PASSWORD, demo_totp_secret, seed_demo


class Command(BaseCommand):
    help = "Create (idempotently) the synthetic demo studies, sites, staff and participants."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with DEBUG off (demo accounts have a known password and TOTP secret).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_production"]:
            raise CommandError(
                "Refusing to create demo accounts with known passwords while DEBUG is off. "
                "Use --allow-production on a throw-away installation."
            )
        staff = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at /admin/ with:"))
        for person in staff:
            role = f"{person.role} of '{person.study}'" if person.study else "operator (superuser)"
            if person.site:
                role += f", site '{person.site}' only"
            self.stdout.write(f"  {person.email:<34} {role}")
        self.stdout.write(f"  password for all: {DEMO_PASSWORD}")
        self.stdout.write("  two-factor code: `python manage.py demo_totp EMAIL` prints the current code,")
        self.stdout.write(
            "  or add the secret to an authenticator app, e.g. coordinator@demo.example: "
            f"{demo_totp_secret('coordinator@demo.example')}"
        )
        safety = seed_safety()
        if safety:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Safety: the 'demo' study's safety plan v1 is in force; {safety['clinician']} (password "
                    "as above) is its designated clinician, texted at the fictional "
                    f"{safety['phone']} in the SMS sandbox. Try: sandbox_cuff_sync demo:<CODE> "
                    "--systolic 192 --diastolic 124, then tick --at <deadline + 1 min>."
                )
            )
        call_command("seed_demo_monitoring", stdout=self.stdout)
        reminders = seed_messaging()
        self.stdout.write(
            self.style.SUCCESS(
                f"Reminders: the 'demo' study's rules are live; {reminders['contacts']} participants "
                "given fictional numbers that opted in (prompts appear in the SMS sandbox at /sms-sandbox/)."
            )
        )
